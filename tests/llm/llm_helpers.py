"""Helpers for the LLM client tests: backend entries, chat-completion replies, an answer schema."""

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

MESSAGES = [
    {"role": "system", "content": "You extract fields."},
    {"role": "user", "content": "PRIVILEGED page text: the client is Acme Corp."},
]
PROMPT_SECRET = "PRIVILEGED page text"


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    client_name: str | None
    amount: float | None = None


GOOD = {"client_name": "Acme Corp", "amount": 12.5}


def entry(name: str, priority: int = 1, **kw: Any) -> dict[str, Any]:
    """An openai-kind backend at http://{name}.test/v1."""
    return {"name": name, "kind": "openai", "base_url": f"http://{name}.test/v1", "model": f"model-{name}",
            "priority": priority, "timeout_s": 5, **kw}


def url(name: str) -> str:
    return f"http://{name}.test/v1/chat/completions"


def pool(*backends: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"backends": list(backends), "deadline_s": 10, "max_attempts": 4, **kw}


def completion(content: Any = None, *, usage: tuple[int, int] = (100, 20), logprobs: list[float] | None = None,
               headers: dict[str, str] | None = None) -> httpx.Response:
    text = content if isinstance(content, str) else json.dumps(GOOD if content is None else content)
    choice: dict[str, Any] = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
    if logprobs is not None:
        choice["logprobs"] = {"content": [{"token": "x", "logprob": v, "top_logprobs": []} for v in logprobs]}
    body = {"model": "served-model", "choices": [choice],
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}}
    return httpx.Response(200, json=body, headers=headers)


def throttle(**headers: str) -> httpx.Response:
    return httpx.Response(429, json={"error": {"code": "429", "message": "Rate limit"}},
                          headers={k.replace("_", "-"): v for k, v in headers.items()})


class Recorder:
    """A respx side effect that replays a script of responses and records when and what was asked."""

    def __init__(self, *script: httpx.Response | Exception | Callable[[], Any], repeat_last: bool = True) -> None:
        self.script = list(script)
        self.repeat_last = repeat_last
        self.times: list[float] = []
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.times.append(time.monotonic())
        self.bodies.append(json.loads(request.content))
        self.headers.append(request.headers)
        i = len(self.times) - 1
        step = self.script[i] if i < len(self.script) else self.script[-1]
        if callable(step) and not isinstance(step, httpx.Response):
            step = await step()
        if isinstance(step, Exception):
            raise step
        assert isinstance(step, httpx.Response)
        return httpx.Response(step.status_code, headers=step.headers, content=step.content)

    @property
    def calls(self) -> int:
        return len(self.times)
