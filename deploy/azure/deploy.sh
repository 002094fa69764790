#!/usr/bin/env bash
# Create the matters container, the workers' managed identity and its two role assignments (main.bicep).
#   deploy/azure/deploy.sh <resource-group> <storage-account> [azure-openai-account ...]
# AKS: set AKS_OIDC_ISSUER first, e.g.
#   AKS_OIDC_ISSUER=$(az aks show -g RG -n CLUSTER --query oidcIssuerProfile.issuerUrl -o tsv)
# VM: attach the identity afterwards: az vm identity assign -g RG -n VM --identities <identityId>
# Then put accountUrl and identityClientId into resources/azure/f/matter/store.resource.yaml
# (account_url, managed_identity_client_id) and the pool's identity_client_id.
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,9p' "$0" >&2
  exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rg=$1 account=$2
shift 2
openai="[]"
if [ $# -gt 0 ]; then
  openai="[$(printf '"%s",' "$@" | sed 's/,$//')]"
fi
az deployment group create \
  --resource-group "$rg" \
  --name matter-pipeline \
  --template-file "$here/main.bicep" \
  --parameters storageAccountName="$account" openAiAccountNames="$openai" \
               aksOidcIssuer="${AKS_OIDC_ISSUER:-}" \
  --query properties.outputs -o json
