// The Azure side of the matter pipeline: the Blob container the matters live in, and the managed
// identity the Windmill workers act as, with only the two roles they need:
// - Storage Blob Data Contributor on the container (not the account: no other container is reachable);
// - Cognitive Services OpenAI User on each Azure OpenAI account of the LLM pool (inference only, no keys).
// The identity is user-assigned: attach it to the VM (az vm identity assign), or federate it with the
// workers' Kubernetes service account on AKS (aksOidcIssuer).
// Deploy with deploy/azure/deploy.sh (az deployment group create). Shared keys are disabled on the
// account, so the matter_store resource uses account_url + managed_identity_client_id.

@description('Storage account name: 3-24 lowercase letters and digits, globally unique.')
@minLength(3)
@maxLength(24)
param storageAccountName string

@description('Region of the new resources.')
param location string = resourceGroup().location

@description('Blob container holding matters/<matter_id>/... (the matter_store resource\'s container).')
param containerName string = 'matters'

@description('Name of the workers\' user-assigned managed identity.')
param identityName string = 'id-windmill-workers'

@description('Azure OpenAI accounts in this resource group that the workers call (the llm_pool backends with auth managed_identity).')
param openAiAccountNames array = []

@description('AKS OIDC issuer URL (az aks show --query oidcIssuerProfile.issuerUrl); empty for a VM.')
param aksOidcIssuer string = ''

@description('Namespace and service account of the Windmill workers on AKS (deploy/aks/values.yaml).')
param kubernetesNamespace string = 'windmill'
param kubernetesServiceAccount string = 'windmill-workers'

@description('Days a deleted blob or container can be restored.')
param softDeleteDays int = 14

var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var cognitiveServicesOpenAIUser = '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd'

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: identityName
  location: location
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageAccountName
  location: location
  kind: 'StorageV2'
  sku: {
    name: 'Standard_ZRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: softDeleteDays
    }
  }
}

resource container 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: containerName
  properties: {
    publicAccess: 'None'
  }
}

resource blobAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(container.id, identity.id, storageBlobDataContributor)
  scope: container
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource openAi 'Microsoft.CognitiveServices/accounts@2024-10-01' existing = [for name in openAiAccountNames: {
  name: name
}]

resource openAiAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (name, i) in openAiAccountNames: {
  name: guid(openAi[i].id, identity.id, cognitiveServicesOpenAIUser)
  scope: openAi[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', cognitiveServicesOpenAIUser)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}]

resource aksFederation 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials@2023-01-31' = if (!empty(aksOidcIssuer)) {
  parent: identity
  name: 'aks-${kubernetesServiceAccount}'
  properties: {
    issuer: aksOidcIssuer
    subject: 'system:serviceaccount:${kubernetesNamespace}:${kubernetesServiceAccount}'
    audiences: [
      'api://AzureADTokenExchange'
    ]
  }
}

output identityId string = identity.id
output identityClientId string = identity.properties.clientId
output accountUrl string = storage.properties.primaryEndpoints.blob
output containerName string = container.name
