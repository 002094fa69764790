"""The `matter_store` resource: which service holds the matters (Azure Blob or S3) and how to reach it."""

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    model_validator,
)


class _Common(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Set when the Windmill workspace's object storage points at this same container or bucket:
    # "_default_" for the workspace's primary storage, or the name of a secondary storage. Step results
    # then carry {"s3": key} references that the run page can preview and download (f/core/links.py).
    workspace_storage: str | None = Field(default=None, min_length=1, max_length=64)
    # Per request: connecting, then each read of the response. A request that times out is retried,
    # attempts in all, with backoff; past that the error goes to the caller (and the step's own retry).
    connect_timeout_s: float = Field(default=10.0, gt=0, le=120)
    read_timeout_s: float = Field(default=60.0, gt=0, le=600)
    attempts: int = Field(default=4, ge=1, le=10)
    retry_backoff_s: float = Field(default=1.0, ge=0, le=30)  # Blob only; botocore's backoff is its own

    @model_validator(mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        """An unset `$var:` or an empty field in the resource form arrives as "": treat it as absent."""
        return {k: v for k, v in value.items() if v != ""} if isinstance(value, dict) else value


class AzureBlobConfig(_Common):
    """Azure Blob: a connection string (Azurite, tests), or the account URL and a managed identity (Azure)."""

    kind: Literal["azure_blob"] = "azure_blob"
    container: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")
    connection_string: SecretStr | None = None
    account_url: str | None = None
    managed_identity_client_id: str | None = None

    @model_validator(mode="after")
    def _one_way_in(self) -> "AzureBlobConfig":
        if not self.connection_string and not self.account_url:
            raise ValueError("store needs connection_string or account_url")
        return self


class S3Config(_Common):
    """S3 or an S3-compatible service: keys from the resource, or the default AWS credential chain
    (environment, shared files, web identity, instance or task role) when they are left out."""

    kind: Literal["s3"]
    bucket: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
    region: str = Field(default="us-east-1", pattern=r"^[a-z0-9-]{2,32}$")
    endpoint_url: str | None = Field(default=None, pattern=r"^https?://")
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    path_style: bool = False  # MinIO and most self-hosted S3 want path-style addressing

    @model_validator(mode="after")
    def _keys_in_pairs(self) -> "S3Config":
        if bool(self.access_key_id) != bool(self.secret_access_key):
            raise ValueError("give both access_key_id and secret_access_key, or neither (default credential chain)")
        if self.session_token and not self.access_key_id:
            raise ValueError("session_token needs access_key_id and secret_access_key")
        if ".." in self.bucket:
            raise ValueError("bucket name must not contain '..'")
        return self


StoreConfig = Annotated[AzureBlobConfig | S3Config, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[AzureBlobConfig | S3Config] = TypeAdapter(StoreConfig)


def load_store_config(value: "AzureBlobConfig | S3Config | dict[str, Any]") -> AzureBlobConfig | S3Config:
    """The resource's value, validated; `kind` defaults to azure_blob, as in the resources written before S3."""
    if isinstance(value, (AzureBlobConfig, S3Config)):
        return value
    if not isinstance(value, dict):
        raise TypeError(f"store resource must be an object, got {type(value).__name__}")
    return _ADAPTER.validate_python(value if value.get("kind") else {**value, "kind": "azure_blob"})
