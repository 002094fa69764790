"""Progress for the Windmill UI (wmill.set_progress) and a log line, from inside a job."""

import logging
import os

log = logging.getLogger("f.progress")


class Progress:
    """Reports percent done, at most once per `step` percent, to Windmill when running as a job."""

    def __init__(self, label: str, total: int, step: int = 5) -> None:
        self.label, self.total, self.step = label, max(1, total), step
        self.done = 0
        self._last = -step
        self._in_job = bool(os.environ.get("WM_JOB_ID"))

    def advance(self, n: int = 1) -> None:
        self.done += n
        percent = min(99, self.done * 100 // self.total)
        if percent - self._last < self.step and self.done < self.total:
            return
        self._last = percent
        log.info("%s: %d/%d (%d%%)", self.label, self.done, self.total, percent)
        if self._in_job:
            try:
                import wmill

                wmill.set_progress(percent)
            except Exception as e:  # progress is a courtesy; never fail the job for it
                log.warning("set_progress failed: %s", type(e).__name__)
