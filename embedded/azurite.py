"""Azurite, the real Azure Blob emulator from npm, started on a free loopback port."""

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAIN_JS = ROOT / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_LISTENING = re.compile(r"listens on http://127\.0\.0\.1:(\d+)")


def connection_string(port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
    )


@dataclass
class Azurite:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def connection_string(self) -> str:
        return connection_string(self.port)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def __enter__(self) -> "Azurite":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_azurite(location: Path | None, log_dir: Path, *, port: int = 0, timeout_s: float = 30.0) -> Azurite:
    """Start Azurite; `location=None` keeps blobs in memory. Logs go to a file, never a pipe (EPIPE kills it)."""
    if not MAIN_JS.exists():
        raise RuntimeError(f"Azurite is not installed at {MAIN_JS}: run scripts/setup")
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"azurite-{os.getpid()}-{time.monotonic_ns()}.log"
    args = ["node", str(MAIN_JS), "--blobHost", "127.0.0.1", "--blobPort", str(port),
            "--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent"]
    if location is None:
        args.append("--inMemoryPersistence")
    else:
        location.mkdir(parents=True, exist_ok=True)
        args += ["--location", str(location)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = _LISTENING.search(log_path.read_text(errors="replace"))
        if found:
            return Azurite(process, int(found.group(1)), log_path)
        if process.poll() is not None:
            raise RuntimeError(f"Azurite exited with {process.returncode}: {log_path.read_text()[-2000:]}")
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    raise RuntimeError(f"Azurite did not start within {timeout_s}s; log: {log_path}")
