"""Request headers per backend: API key, Entra ID token (managed identity), or nothing.

Managed identity uses azure-identity's async credentials, imported only when a backend needs
them: `ManagedIdentityCredential(client_id=...)` when `identity_client_id` is set (a
user-assigned identity), else `DefaultAzureCredential()` (system identity on Azure, `az login`
on a laptop). One `TokenProvider` per identity per process, token cached until 5 minutes before
expiry, one refresh at a time.
"""

import asyncio
import time
from typing import Any, Protocol

from f.llm.pool import AZURE_SCOPE, BackendConfig

REFRESH_MARGIN_S = 300.0


class AccessTokenLike(Protocol):
    @property
    def token(self) -> str: ...

    @property
    def expires_on(self) -> int: ...


class AsyncTokenCredential(Protocol):
    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessTokenLike: ...


class AuthError(RuntimeError):
    """Getting a token failed; the message names the backend and the exception type only."""


class TokenProvider:
    def __init__(self, credential: AsyncTokenCredential, scope: str = AZURE_SCOPE) -> None:
        self.credential = credential
        self.scope = scope
        self._token: AccessTokenLike | None = None
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        return self._token is not None and self._token.expires_on - REFRESH_MARGIN_S > time.time()

    async def token(self) -> str:
        if not self._fresh():
            async with self._lock:
                if not self._fresh():
                    self._token = await self.credential.get_token(self.scope)
        assert self._token is not None
        return self._token.token

    async def aclose(self) -> None:
        close = getattr(self.credential, "close", None)
        if close is not None:
            await close()


_providers: dict[str | None, TokenProvider] = {}


def default_credential(client_id: str | None) -> AsyncTokenCredential:
    from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

    if client_id:
        return ManagedIdentityCredential(client_id=client_id)
    return DefaultAzureCredential()


def token_provider(client_id: str | None) -> TokenProvider:
    """The process-wide provider for this identity (created on first use)."""
    if client_id not in _providers:
        _providers[client_id] = TokenProvider(default_credential(client_id))
    return _providers[client_id]


async def close_token_providers() -> None:
    for provider in _providers.values():
        await provider.aclose()
    _providers.clear()


class Auth:
    """Builds headers; `credential` replaces the azure-identity one (tests, custom identities)."""

    def __init__(self, credential: AsyncTokenCredential | None = None) -> None:
        self._override = TokenProvider(credential) if credential is not None else None

    async def headers(self, backend: BackendConfig) -> dict[str, str]:
        if backend.auth == "key":
            assert backend.api_key is not None
            key = backend.api_key.get_secret_value()
            return {"api-key": key} if backend.kind == "azure" else {"Authorization": f"Bearer {key}"}
        if backend.auth == "managed_identity":
            provider = self._override or token_provider(backend.identity_client_id)
            try:
                return {"Authorization": f"Bearer {await provider.token()}"}
            except Exception as e:  # azure-identity errors can be long; keep the type only
                raise AuthError(f"{backend.name}: token request failed ({type(e).__name__})") from None
        return {}
