"""Regenerate the Windmill metadata beside every script under f/: `.script.yaml` (schema from main())
with Windmill's own CLI, and `.script.lock` from the pinned runtime requirements.

The CLI needs a server to talk to even for --schema-only; a tiny loopback stand-in answers the few
calls it makes (whoami, version, an empty workspace). No Windmill server is involved.
"""

import ast
import http.server
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WMILL = ROOT / "node_modules" / ".bin" / "wmill"


class _StandIn(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        if "tarball" in self.path:
            buffer = io.BytesIO()
            zipfile.ZipFile(buffer, "w").close()
            body, kind = buffer.getvalue(), "application/zip"
        else:
            kind = "application/json"
            if "version" in self.path:
                body = b'"v1.819.0"'
            elif "whoami" in self.path:
                body = json.dumps({"email": "dev@local", "username": "dev", "is_admin": True,
                                   "is_super_admin": True, "workspace_id": "matters"}).encode()
            else:
                body = b"[]" if "list" in self.path else b"{}"
        self.send_response(200)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


def lock_text() -> str:
    lines = (ROOT / "requirements" / "runtime.txt").read_text().splitlines()
    return "\n".join(sorted(line.strip() for line in lines if line.strip() and not line.startswith("#"))) + "\n"


def scripts() -> list[Path]:
    return sorted(p for p in (ROOT / "f").rglob("*.py") if "__pycache__" not in p.parts)


def summary(script: Path) -> str:
    """The first line of the module docstring: what the Windmill UI lists the script by."""
    doc = ast.get_docstring(ast.parse(script.read_text())) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def stand_in() -> http.server.ThreadingHTTPServer:
    """The loopback stand-in, serving on a free port in a daemon thread; shut it down after use."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def wmill(server: http.server.HTTPServer, *args: str, capture: bool = False, cwd: Path = ROOT) -> str:
    """Run the wmill CLI against the stand-in, with a throwaway config dir; its output if `capture`."""
    with tempfile.TemporaryDirectory() as config_dir:
        done = subprocess.run(
            [str(WMILL), *args, "--base-url", f"http://127.0.0.1:{server.server_port}", "--token", "local",
             "--workspace", "matters"],
            cwd=cwd, env=os.environ | {"WMILL_CONFIG_DIR": config_dir, "NO_COLOR": "1"}, check=True, text=True,
            stdout=subprocess.PIPE if capture else subprocess.DEVNULL, stderr=subprocess.STDOUT if capture else None,
        )
    return done.stdout or ""


def generate() -> None:
    server = stand_in()
    try:
        wmill(server, "generate-metadata", "--schema-only", "--yes", "f/")
        write_locks_and_summaries()
        # Locks and summaries changed files that wmill hashed: refresh wmill-lock.yaml, or
        # `wmill sync push` calls every script's metadata stale.
        wmill(server, "generate-metadata", "rehash", "f/")
    finally:
        server.shutdown()
    print(f"metadata and locks written for {len(scripts())} scripts", file=sys.stderr)


# Worker routing: the heavy stages run on the extraction worker group (WORKER_TAGS=extraction, see deploy/).
TAGS = {"f/matter/split": "extraction", "f/matter/extract": "extraction"}


def write_locks_and_summaries() -> None:
    lock = lock_text()
    for script in scripts():
        script.with_suffix(".script.lock").write_text(lock)
        meta = script.with_suffix(".script.yaml")
        if not meta.exists():
            raise SystemExit(f"wmill wrote no metadata for {script.relative_to(ROOT)}")
        data = yaml.safe_load(meta.read_text())
        data["summary"] = summary(script)
        data["lock"] = f"!inline {script.relative_to(ROOT).with_suffix('.script.lock')}"
        tag = TAGS.get(str(script.relative_to(ROOT).with_suffix("")))
        if tag:
            data["tag"] = tag
        meta.write_text(yaml.safe_dump(data, sort_keys=False, width=120, allow_unicode=True))


if __name__ == "__main__":
    generate()
