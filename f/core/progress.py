"""Progress for the Windmill UI (wmill.set_progress) and a log line, from inside a job.

`wmill.set_progress` is a blocking HTTP client call (two requests: the job, then the progress). Made on the
event loop it stalled every stage that reports progress, once per step, for as long as the API took to
answer. So the call goes to one background thread that always sends the newest value and drops the ones
it had no time for (waited for at exit, so the last value arrives), and a job reports at most once per
`min_interval_s`.
"""

import atexit
import logging
import os
import threading
import time

log = logging.getLogger("f.progress")


class _Sender:
    """One daemon thread that sends the newest pending percentage; started when there is something to send."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: int | None = None
        self._thread: threading.Thread | None = None

    def submit(self, percent: int) -> None:
        with self._lock:
            self._pending = percent
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="wmill-progress", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                percent, self._pending = self._pending, None
                if percent is None:
                    self._thread = None
                    return
            try:
                import wmill

                wmill.set_progress(percent)
            except Exception as e:  # progress is a courtesy; never fail the job for it
                log.warning("set_progress failed: %s", type(e).__name__)

    def wait(self, timeout_s: float = 5.0) -> None:
        """Until nothing is pending (tests)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if self._thread is None:
                    return
            time.sleep(0.01)


_sender = _Sender()
atexit.register(_sender.wait, 5.0)  # the last value (99 %) still reaches Windmill when the job returns at once


class Progress:
    """Reports percent done, at most once per `step` percent and `min_interval_s`, to Windmill when running as
    a job (in the background), and as a log line."""

    def __init__(self, label: str, total: int, step: int = 5, min_interval_s: float = 1.0) -> None:
        self.label, self.total, self.step, self.min_interval_s = label, max(1, total), step, min_interval_s
        self.done = 0
        self._last = -step
        self._last_at = float("-inf")
        self._in_job = bool(os.environ.get("WM_JOB_ID"))

    def advance(self, n: int = 1) -> None:
        self.done += n
        percent = min(99, self.done * 100 // self.total)
        now = time.monotonic()
        finished = self.done >= self.total
        if not finished and (percent - self._last < self.step or now - self._last_at < self.min_interval_s):
            return
        self._last, self._last_at = percent, now
        log.info("%s: %d/%d (%d%%)", self.label, self.done, self.total, percent)
        if self._in_job:
            _sender.submit(percent)
