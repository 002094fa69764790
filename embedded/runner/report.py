"""Progress lines on stderr: one per job start and finish, retries, skips, stops and set_progress."""

import json
import sys
import time
from typing import Any

from embedded.runner.jobs import Job

RESULT_LIMIT = 16 * 1024  # the project keeps every step result under 16 KB


class Reporter:
    def __init__(self, verbose: bool = False) -> None:
        self.verbose = verbose  # echo every line the jobs print
        self.t0 = time.monotonic()

    def note(self, tag: str, label: str, detail: str = "") -> None:
        elapsed = time.monotonic() - self.t0
        print(f"[wm {elapsed:7.2f}s] {tag:<8} {label}  {detail}".rstrip(), file=sys.stderr, flush=True)

    def started(self, job: Job) -> None:
        self.note("start", job.label, "" if job.path == job.label else job.path)

    def succeeded(self, job: Job, seconds: float, result: Any) -> None:
        size = len(json.dumps(result))
        self.note("ok", job.label, f"{seconds:.2f}s  {_bytes(size)}")
        if size > RESULT_LIMIT:
            self.note("WARN", job.label, f"result is {_bytes(size)}, over the {_bytes(RESULT_LIMIT)} limit")

    def failed(self, label: str, seconds: float, error: dict[str, Any]) -> None:
        self.note("FAIL", label, f"{seconds:.2f}s  {error.get('name')}: {error.get('message')}")

    def progress(self, job: Job, percent: int) -> None:
        self.note("progress", job.label, f"{percent}%")

    def log(self, job: Job, line: str) -> None:
        if self.verbose:
            print(f"  | {job.label}: {line}", file=sys.stderr, flush=True)


def _bytes(n: int) -> str:
    return f"{n} B" if n < 1024 else f"{n / 1024:.1f} KB"
