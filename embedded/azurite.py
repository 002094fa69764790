"""Azurite, the real Azure Blob emulator from npm, started on a free loopback port."""

import re
from pathlib import Path

from embedded.process_group import ServerProcess, spawn, wait_for_port

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


class Azurite(ServerProcess):
    @property
    def connection_string(self) -> str:
        return connection_string(self.port)


def start_azurite(location: Path | None, log_dir: Path, *, port: int = 0, timeout_s: float = 30.0) -> Azurite:
    """Start Azurite; `location=None` keeps blobs in memory."""
    if not MAIN_JS.exists():
        raise RuntimeError(f"Azurite is not installed at {MAIN_JS}: run scripts/setup")
    args = ["node", str(MAIN_JS), "--blobHost", "127.0.0.1", "--blobPort", str(port),
            "--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent"]
    if location is None:
        args.append("--inMemoryPersistence")
    else:
        location.mkdir(parents=True, exist_ok=True)
        args += ["--location", str(location)]
    server = spawn("azurite", args, log_dir)
    return Azurite(**vars(wait_for_port(server, _LISTENING, timeout_s)))
