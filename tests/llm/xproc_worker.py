"""One "Windmill job" for the cross-process tests: its own OS process, its own LLMClient, the shared store.

    python tests/llm/xproc_worker.py '{"store": {...}, "pool": {...}, "rate": 8, "duration_s": 6,
                                       "start_at": <epoch s>, "shared": true}'

Sends `rate` calls per second (open loop) for `duration_s`, starting at `start_at` so that sibling
processes start together, then prints one JSON line: {"ok", "failed", "backends": client.stats(),
                    "errors": errors[:3]}.
"""

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pydantic import BaseModel

from f.core.storage import open_store
from f.llm.client import LLMCallFailed, LLMClient


class Answer(BaseModel):
    summary: str | None = None


MESSAGES = [{"role": "user", "content": "Who is the client? Acme Corp engaged us."}]


async def main(args: dict[str, Any]) -> dict[str, Any]:
    async with open_store(args["store"], "", create_container=True) as store:
        board = store if args.get("shared", True) else None
        await asyncio.sleep(max(0.0, args["start_at"] - time.time()))
        async with LLMClient(args["pool"], board_store=board) as client:
            outcomes: list[bool] = []
            errors: list[str] = []

            async def one() -> None:
                try:
                    await client.complete_json(MESSAGES, Answer, max_tokens=20)
                    outcomes.append(True)
                except LLMCallFailed as e:
                    outcomes.append(False)
                    errors.append(str(e)[:500])

            tasks = []
            period = 1.0 / args["rate"]
            t0 = time.monotonic()
            for i in range(int(args["rate"] * args["duration_s"])):
                await asyncio.sleep(max(0.0, t0 + i * period - time.monotonic()))
                tasks.append(asyncio.create_task(one()) if not args.get("sequential") else None)
                if args.get("sequential"):
                    await one()
            await asyncio.gather(*[t for t in tasks if t is not None])
            return {"ok": outcomes.count(True), "failed": outcomes.count(False), "backends": client.stats(),
                    "errors": errors[:3]}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))), flush=True)
