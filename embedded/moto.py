"""moto's S3 server, the stand-in for S3 (no MinIO is installable here), started on a free loopback port.

Its own process, so the emulator does not share the GIL with the code under test; stopped with its
process group. Objects live in memory and are gone when it stops.
"""

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"
_LISTENING = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")


@dataclass
class MotoServer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def store_config(self, bucket: str) -> dict[str, str]:
        """A `matter_store` resource value (kind s3) for a bucket on this server."""
        return {"kind": "s3", "bucket": bucket, "region": REGION, "endpoint_url": self.endpoint_url,
                "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def __enter__(self) -> "MotoServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_moto(log_dir: Path, *, port: int = 0, timeout_s: float = 30.0) -> MotoServer:
    """Start `python -m moto.server`; port 0 picks a free one, read back from its log (a file, never a pipe)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"moto-{os.getpid()}-{time.monotonic_ns()}.log"
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                   start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = _LISTENING.search(log_path.read_text(errors="replace"))
        if found:
            return MotoServer(process, int(found.group(1)), log_path)
        if process.poll() is not None:
            raise RuntimeError(f"moto exited with {process.returncode}: {log_path.read_text()[-2000:]}")
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    raise RuntimeError(f"moto did not start within {timeout_s}s; log: {log_path}")
