"""Token providers: one per identity per process, azure-identity imported only when needed."""

import sys
import time

import pytest

from f.llm import auth


class Fake:
    def __init__(self) -> None:
        self.calls, self.closed = 0, False

    async def get_token(self, *scopes, **kwargs):
        self.calls += 1

        class Token:
            token = "t"
            expires_on = int(time.time()) + 3600
        return Token()

    async def close(self) -> None:
        self.closed = True


async def test_one_provider_per_identity(monkeypatch):
    made: list[str | None] = []

    def factory(client_id):
        made.append(client_id)
        return Fake()

    monkeypatch.setattr(auth, "default_credential", factory)
    monkeypatch.setattr(auth, "_providers", {})
    assert auth.token_provider("id-1") is auth.token_provider("id-1")
    assert auth.token_provider(None) is not auth.token_provider("id-1")
    assert made == ["id-1", None]
    provider = auth.token_provider("id-1")
    await provider.token()
    await provider.token()
    assert provider.credential.calls == 1
    await auth.close_token_providers()
    assert provider.credential.closed and auth._providers == {}


async def test_user_assigned_identity_uses_managed_identity_credential():
    """Construction only (no token request, so no network): the user-assigned path."""
    pytest.importorskip("azure.identity.aio")
    cred = auth.default_credential("00000000-0000-0000-0000-000000000001")
    try:
        assert type(cred).__name__ == "ManagedIdentityCredential"
    finally:
        await cred.close()


def test_azure_identity_is_imported_lazily():
    import subprocess

    code = "import f.llm.client, sys; print('azure.identity' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=__file__.rsplit("/tests/", 1)[0])
    assert out.stdout.strip() == "False"
