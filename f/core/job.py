"""The glue every stage script's main() uses: logging, one event loop, the store scoped to the matter."""

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from f.core.layout import MatterPaths
from f.core.storage import BlobStore, open_store


def _logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s %(message)s")
        for noisy in ("azure", "httpx", "httpcore", "botocore", "aiobotocore"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def run_stage(stage: Callable[[BlobStore], Awaitable[BaseModel]], store: dict[str, Any], matter_id: str) -> Any:
    """Run one stage on one event loop, with writes confined to the matter's prefix; return its summary as JSON."""
    _logging()
    prefix = MatterPaths(matter_id).prefix

    async def go() -> BaseModel:
        async with open_store(store, prefix) as blob:
            return await stage(blob)

    summary = asyncio.run(go()).model_dump(mode="json")
    if isinstance(summary, dict) and summary.get("s3") is None:  # no link: leave no empty s3 key for the UI
        summary.pop("s3", None)
        summary.pop("storage", None)
    return summary
