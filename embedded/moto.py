"""moto's S3 server, the stand-in for S3 (no MinIO is installable here), started on a free loopback port.

Its own process, so the emulator does not share the GIL with the code under test; stopped with its
process group. Objects live in memory and are gone when it stops.
"""

import os
import re
import sys
from pathlib import Path

from embedded.process_group import ServerProcess, spawn, wait_for_port

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"
_LISTENING = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")


class MotoServer(ServerProcess):
    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def store_config(self, bucket: str) -> dict[str, str]:
        """A `matter_store` resource value (kind s3) for a bucket on this server."""
        return {"kind": "s3", "bucket": bucket, "region": REGION, "endpoint_url": self.endpoint_url,
                "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}


def start_moto(log_dir: Path, *, port: int = 0, timeout_s: float = 30.0) -> MotoServer:
    """Start `python -m moto.server`; port 0 picks a free one, read back from its log."""
    server = spawn("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], log_dir,
                   env=os.environ | {"PYTHONUNBUFFERED": "1"})
    return MotoServer(**vars(wait_for_port(server, _LISTENING, timeout_s)))
