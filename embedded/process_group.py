"""A local server in its own process group: started with its output in a log file (never a pipe, whose
reader going away kills it with EPIPE), found ready by a line in that log, stopped with its whole group."""

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class ServerProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int = 0

    def log_tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after grace_s."""
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
            if self.process.poll() is not None:
                return
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(timeout=wait_s)
                return
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def spawn(name: str, args: list[str], log_dir: Path, *, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> ServerProcess:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{os.getpid()}-{time.monotonic_ns()}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, env=env, cwd=cwd)
    return ServerProcess(name, process, log_path)


def wait_for_port(server: ServerProcess, listening: re.Pattern[str], timeout_s: float = 30.0) -> ServerProcess:
    """Until the log shows `listening` (its group 1 is the port); the server is killed if it never does."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = listening.search(server.log_path.read_text(errors="replace"))
        if found:
            server.port = int(found.group(1))
            return server
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}: {server.log_tail()}")
        time.sleep(0.05)
    server.stop(grace_s=0)
    raise RuntimeError(f"{server.name} did not start within {timeout_s}s; log: {server.log_path}")
