"""The glue every stage script's main() uses: checked arguments, logging, one event loop, a scoped store.

`boundary` validates main()'s arguments with pydantic before it runs; `run_stage` runs the stage's activity
on one event loop with writes confined to the matter's prefix.
"""

import asyncio
import functools
import inspect
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
)

from f.core.ids import ID_PATTERN
from f.core.layout import MatterPaths
from f.core.storage import BlobStore, open_store
from f.core.store_config import StoreConfig
from f.llm.pool import LLMPool, field_path

F = TypeVar("F", bound=Callable[..., Any])
MAX_RESOURCE_BYTES = 64 * 1024  # a store or pool resource as JSON
MAX_MESSAGE_CHARS = 1_000_000  # an error message handed to the failure module


class InvalidInput(ValueError):
    """A main() argument that does not validate. The message names each field and the rule it broke, and
    never quotes a value: the store and the pool carry secrets."""


def _no_dotdot(value: str) -> str:
    if ".." in value:
        raise ValueError("must not contain '..'")
    return value


def _bounded_json(limit: int, **defaults: Any) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError("must be an object (a resource)")
        if len(json.dumps(value, default=str)) > limit:
            raise ValueError(f"is over {limit} bytes as JSON")
        return {**defaults, **{k: v for k, v in value.items() if v is not None}} if defaults else value

    return check


Id = Annotated[str, Field(strict=True, min_length=1, max_length=64, pattern=ID_PATTERN), AfterValidator(_no_dotdot)]
OptionalId = Id | Literal[""]


def _count(low: int, high: int) -> Any:
    return Annotated[int, Field(strict=True, ge=low, le=high)]


# What every stage argument must be, by name; the flows' schemas state the same bounds.
ARGUMENTS: dict[str, Any] = {
    "store": Annotated[StoreConfig, BeforeValidator(_bounded_json(MAX_RESOURCE_BYTES, kind="azure_blob"))],
    "pool": Annotated[LLMPool, BeforeValidator(_bounded_json(MAX_RESOURCE_BYTES))],
    "matter_id": Id,
    "doc_id": Id,
    "batch": _count(0, 100_000),
    "k": _count(1, 7),
    "chunk_pages": _count(1, 20),
    "overlap_chars": _count(0, 4000),
    "batch_size": _count(1, 64),
    "step": Annotated[str, Field(strict=True, max_length=200)],
    "message": Annotated[str, Field(strict=True, max_length=MAX_MESSAGE_CHARS)],
}


def _problems(e: ValidationError) -> str:
    lines = []
    for err in e.errors(include_url=False, include_input=False, include_context=False):
        # leave out the names pydantic gives union members ("azure_blob", "literal['']", "function-after[...]")
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p in ("azure_blob", "s3"))))
        message = err["msg"].removeprefix("Value error, ")
        if message.startswith("invalid llm_pool resource:"):  # LLMPool's own errors: one "  path: problem" a line
            for line in message.splitlines()[1:]:
                sub, _, problem = line.strip().partition(": ")
                lines.append(f"{field_path(loc)}.{sub}: {problem}")
            continue
        lines.append(f"{field_path(loc)}: {' '.join(message.split())}")
    return "; ".join(lines[:10])


def boundary(main: F | None = None, **types: Any) -> Any:
    """Check main()'s arguments with pydantic before it runs: ids, counts and sizes by the rules in ARGUMENTS
    (`types` overrides them per script), resources by their own models. Values pass through unchanged, and
    nothing is coerced: "3" is not a count. Raises InvalidInput naming the fields."""

    def wrap(fn: F) -> F:
        signature = inspect.signature(fn)
        fields: dict[str, Any] = {}
        for name, param in signature.parameters.items():
            kind = types.get(name, ARGUMENTS.get(name, Any))
            if param.default is None:  # `x: int | None = None`: None stays allowed
                kind = kind | None
            fields[name] = (kind, ... if param.default is param.empty else param.default)
        model = create_model(f"{fn.__module__.rsplit('.', 1)[-1]}_arguments",
                             __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True), **fields)
        script = fn.__module__.replace(".", "/")

        @functools.wraps(fn)
        def checked(*args: Any, **kwargs: Any) -> Any:
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as e:
                raise InvalidInput(f"{script}: {e}") from None
            try:
                model.model_validate(bound.arguments)
            except ValidationError as e:
                raise InvalidInput(f"{script}: invalid input: {_problems(e)}") from None
            return fn(*bound.args, **bound.kwargs)

        return checked  # type: ignore[return-value]

    return wrap(main) if main is not None else wrap


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
