"""The `llm_pool` Windmill resource type: which backends exist, how to reach them, and their budgets.

`LLMPool.from_resource(dict)` is the one entry point. Errors name the field
(`backends[1].rpm: Input should be greater than 0`) and never echo input values, so an
`api_key` cannot leak through a validation message.
"""

from typing import Any, Literal
from urllib.parse import quote

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

BackendKind = Literal["azure", "openai"]
AuthMode = Literal["none", "key", "managed_identity"]
StructuredMode = Literal["json_schema", "json_object_schema", "json_object"]

AZURE_SCOPE = "https://cognitiveservices.azure.com/.default"


class PoolConfigError(ValueError):
    """An `llm_pool` resource that does not validate; the message lists `field.path: problem` lines."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BackendConfig(_Model):
    """One chat-completions endpoint: an Azure OpenAI deployment or an OpenAI-compatible server."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    kind: BackendKind
    base_url: str = Field(description="azure: https://x.openai.azure.com; openai: http://host:8000/v1")
    model: str = Field(min_length=1, description="model name (openai kind) or deployment name (azure kind)")
    api_version: str | None = Field(default=None, validate_default=True, description="azure only, e.g. 2024-10-21")
    auth: AuthMode = "none"
    api_key: SecretStr | None = Field(default=None, validate_default=True)
    identity_client_id: str | None = None
    priority: int = Field(default=1, ge=1, description="1 = first tier")
    weight: float = Field(default=1.0, gt=0)
    rpm: int | None = Field(default=None, gt=0, description="requests per minute; None = not limited here")
    tpm: int | None = Field(default=None, gt=0, description="tokens per minute; None = not limited here")
    max_inflight: int = Field(default=8, ge=1, le=1024)
    timeout_s: float = Field(default=60.0, gt=0, le=3600)
    structured_output: StructuredMode = "json_schema"
    logprobs: bool = False

    # Field validators (fields validate in declaration order) so errors carry the field's name.
    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str, info: ValidationInfo) -> str:
        v = v.rstrip("/")
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        if info.data.get("kind") == "openai" and not v.endswith("/v1"):
            raise ValueError("must end in /v1 for kind 'openai'")
        return v

    @field_validator("api_version")
    @classmethod
    def _azure_version(cls, v: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("kind") == "azure" and not v:
            raise ValueError("required for kind 'azure' (e.g. 2024-10-21)")
        return v

    @field_validator("api_key")
    @classmethod
    def _key_present(cls, v: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if info.data.get("auth") == "key" and (v is None or not v.get_secret_value()):
            raise ValueError("required when auth is 'key'")
        return v

    @property
    def url(self) -> str:
        if self.kind == "azure":
            deployment = quote(self.model, safe="")
            return f"{self.base_url}/openai/deployments/{deployment}/chat/completions?api-version={self.api_version}"
        return f"{self.base_url}/chat/completions"


class BreakerConfig(_Model):
    """When a backend is taken out of rotation (5xx, timeouts, connection errors), and for how long."""

    consecutive_failures: int = Field(default=5, ge=1)
    failure_rate: float = Field(default=0.5, gt=0, le=1, description="open when this share of the window fails")
    window: int = Field(default=20, ge=2, description="outcomes remembered for the failure rate")
    min_calls: int = Field(default=10, ge=1, description="no rate-based trip before this many outcomes")
    cooloff_s: float = Field(default=5.0, gt=0, description="open -> half-open; doubles per failed probe")
    max_cooloff_s: float = Field(
        default=5.0, gt=0, description="cap of the doubling; the default keeps the probe cycle at 5 s, so a half-open "
        "probe that meets one of the isolated 5xx costs 5 s of that backend, not minutes")


class SharedConfig(_Model):
    """Admission and breaker state shared by every process using this pool, through the store (see f.llm.shared).

    Used when the client is given a store (`LLMClient(pool, board_store=...)`) and `enabled` is true."""

    enabled: bool = True
    prefix: str = Field(default="_llm/boards/", pattern=r"^[A-Za-z0-9._/-]*$", description="blob prefix of the boards")
    lease_s: float = Field(default=0.3, gt=0, le=60, description="budget leased per sync: about this many seconds of demand")
    lease_ttl_s: float = Field(default=3.0, gt=0, le=120, description="leased budget not used by then is dropped")
    refresh_s: float = Field(default=2.0, gt=0, le=300, description="a backend's board is re-read at least this often")
    burst_s: float = Field(default=10.0, gt=0, le=60, description="depth of the shared buckets, in seconds of rate")
    fallback_processes: int = Field(
        default=4, ge=1, description="store unreachable: each process takes rpm/tpm divided by this"
    )


class LLMPool(_Model):
    backends: list[BackendConfig] = Field(min_length=1)
    deadline_s: float = Field(default=120.0, gt=0, description="wall-clock budget of one call, failovers included")
    max_attempts: int = Field(
        default=4, ge=1, le=20, description="non-429 attempts per call (429s are bounded by the deadline)"
    )
    default_cooldown_s: float = Field(default=2.0, gt=0, description="cooldown after a 429 that names no retry time")
    spread_wait_s: float = Field(
        default=0.0, ge=0, description="how long a call may wait for a backend its sibling samples (`spread`) have "
        "not used before it takes one they have: 0 never waits; a pool of different models that should each "
        "answer once per chunk sets it")
    repeat_temperature: float = Field(
        default=0.7, ge=0, le=2, description="sampling temperature of a call sent to a backend that a sibling sample "
        "(`spread`) already used: at the caller's temperature (0) it would repeat that answer and count as agreement; "
        "sampled, it is an independent draw")
    output_profile: Literal["full", "compact"] = Field(
        default="full", description="what one extraction call asks for (see f.extraction.profiles)")
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    shared: SharedConfig = Field(default_factory=SharedConfig)

    @model_validator(mode="after")
    def _unique_names(self) -> "LLMPool":
        names = [b.name for b in self.backends]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"backend names must be unique: {', '.join(dupes)}")
        return self

    # Both construction paths re-raise as PoolConfigError: pydantic's own message would echo the
    # input (a whole backend dict, api_key included) next to a missing or mistyped field.
    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise PoolConfigError("invalid llm_pool resource:\n" + format_errors(e)) from None

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> "LLMPool":
        if isinstance(obj, dict) and not kwargs:  # pydantic would run __init__ and wrap its error
            return cls(**obj)
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as e:
            raise PoolConfigError("invalid llm_pool resource:\n" + format_errors(e)) from None

    @classmethod
    def from_resource(cls, resource: "dict[str, Any] | LLMPool") -> "LLMPool":
        return resource if isinstance(resource, LLMPool) else cls.model_validate(resource)

    def backend(self, name: str) -> BackendConfig:
        return next(b for b in self.backends if b.name == name)


def field_path(loc: tuple[int | str, ...]) -> str:
    """('backends', 1, 'rpm') -> 'backends[1].rpm'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def format_errors(e: ValidationError) -> str:
    """One `path: message` line per error; input values are never included (they may be secrets)."""
    lines = []
    for err in e.errors(include_url=False, include_input=False, include_context=False):
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"  {field_path(tuple(err['loc']))}: {msg}")
    return "\n".join(lines)
