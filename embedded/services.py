"""The embedded default's live parts: Azurite and the LLM pool, started for a run and stopped after it.

Yields the Windmill variables that the local resources reference ($var:...), so the resources in
resources/local/ stay the same whichever ports the services got.
"""

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Literal

from embedded.azurite import ROOT, start_azurite
from f.core.storage import open_store

PoolName = Literal["sim", "local-models", "none"]
StoreKind = Literal["azure_blob", "s3"]
STATE = Path(os.environ.get("MATTER_STATE_DIR") or ROOT / ".state")
CONTAINER = "matters"
BLOB_VARIABLE = "f/matter/blob_connection_string"
S3_VARIABLE = "f/matter/s3_endpoint_url"  # moto's URL, for $res:f/matter/store_s3 (MATTER_STORE=s3)


def backend_url_variable(backend: str) -> str:
    return f"f/llm/{backend.replace('-', '_')}_url"


@asynccontextmanager
async def local_services(pool: PoolName = "sim", state_dir: Path = STATE, persistent: bool = True,
                         store: StoreKind | None = None) -> AsyncIterator[dict[str, str]]:
    """Azurite (blobs kept in state_dir/azurite when persistent) and the chosen pool; with store "s3"
    (or MATTER_STORE=s3) also moto's S3, in memory only, for $res:f/matter/store_s3."""
    async with AsyncExitStack() as stack:
        azurite = await asyncio.to_thread(
            start_azurite, state_dir / "azurite" if persistent else None, state_dir / "logs")
        stack.callback(azurite.stop)
        variables = {BLOB_VARIABLE: azurite.connection_string}
        async with open_store({"container": CONTAINER, "connection_string": azurite.connection_string},
                              create_container=True):
            pass
        if (store or os.environ.get("MATTER_STORE", "azure_blob")) == "s3":
            from embedded.moto import start_moto

            moto = await asyncio.to_thread(start_moto, state_dir / "logs")
            stack.callback(moto.stop)
            variables[S3_VARIABLE] = moto.endpoint_url
            async with open_store(moto.store_config(CONTAINER), create_container=True):
                pass
        if pool == "sim":
            from embedded.simpool import default_sim_specs, run_sim_pool

            backends = await stack.enter_async_context(run_sim_pool(default_sim_specs()))
            variables |= {backend_url_variable(name): url for name, url in backends}
        elif pool == "local-models":
            from embedded.llamacpp import run_local_models

            backends = await stack.enter_async_context(run_local_models(state_dir / "logs"))
            variables |= {backend_url_variable(name): url for name, url in backends}
        yield variables
