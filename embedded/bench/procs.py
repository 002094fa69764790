"""Peak memory of job processes, read from /proc while they run (no psutil).

A job is `python -m embedded.runner.job <file> <module> <job dir>`; split forks a page-reading pool under it.
The sampler walks this process's descendants every `interval_s`, and for every job process it finds keeps the
peak of the summed RSS of the job and its own descendants (the pool workers). Forked workers share their
parent's pages until they write them, so a summed RSS counts those twice: it is an upper bound, the same
for a small and a large document, and the growth between the two is what the benchmark reports.
"""

import os
import threading
from collections import defaultdict
from dataclasses import dataclass, field

PAGE = os.sysconf("SC_PAGE_SIZE")
JOB_MODULE = "embedded.runner.job"


def _stat(pid: str) -> tuple[int, int] | None:
    """(parent pid, RSS bytes) of a process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2:].split()  # after "pid (comm) "
    return int(fields[1]), int(fields[21]) * PAGE  # ppid, rss in pages


def _hwm(pid: int) -> int:
    """The process's own peak RSS so far (VmHWM), in bytes: catches a peak between two samples."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


@dataclass
class JobPeak:
    pid: int
    module: str  # e.g. f.matter.split
    job_dir: str
    peak_bytes: int = 0
    processes: int = 1  # the most processes seen in its tree at once


@dataclass
class RssSampler:
    """Use as a context manager around the runs to watch; `peaks()` by job process."""

    interval_s: float = 0.1
    root: int = field(default_factory=os.getpid)
    jobs: dict[int, JobPeak] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> "RssSampler":
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def sample(self) -> None:
        parent: dict[int, int] = {}
        rss: dict[int, int] = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                found = _stat(name)
                if found:
                    parent[int(name)], rss[int(name)] = found
        children: dict[int, list[int]] = defaultdict(list)
        for pid, ppid in parent.items():
            children[ppid].append(pid)
        stack = list(children.get(self.root, []))
        while stack:
            pid = stack.pop()
            job = self.jobs.get(pid)
            if job is None:
                argv = _cmdline(pid)
                if JOB_MODULE in argv and len(argv) >= argv.index(JOB_MODULE) + 4:
                    i = argv.index(JOB_MODULE)
                    job = self.jobs[pid] = JobPeak(pid, argv[i + 2], argv[i + 3])
            if job is not None:
                tree, total = [pid], 0
                count = 0
                while tree:
                    p = tree.pop()
                    total += rss.get(p, 0)
                    count += 1
                    tree.extend(children.get(p, []))
                job.peak_bytes = max(job.peak_bytes, total, _hwm(pid))
                job.processes = max(job.processes, count)
                continue  # a job's descendants are its own
            stack.extend(children.get(pid, []))

    def peaks(self) -> list[JobPeak]:
        return list(self.jobs.values())

    def by_module(self, since: int = 0) -> dict[str, int]:
        """The largest peak per script module, among the jobs seen after the first `since` ones."""
        out: dict[str, int] = {}
        for job in list(self.jobs.values())[since:]:
            out[job.module] = max(out.get(job.module, 0), job.peak_bytes)
        return out

