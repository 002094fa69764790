"""Flow semantics, after Windmill's worker_flow.rs.

- A step's arguments come from its input_transforms. The first step of a flow, loop iteration or
  branch sees `previous_result` = that scope's flow input.
- A failed step's result is `{"error": {name, message, stack, step_id}}`. `retry` re-runs it with
  the same arguments; then `continue_on_error` makes the error its result; else the flow fails,
  its `failure_module` runs with `error` bound, and the flow stays failed unless the failure
  module returns `{"recover": true}`.
- `stop_after_if` ends the list of steps it sits in: a flow, a loop iteration (which also breaks a
  sequential loop) or a branch (which also ends the flow around it). On a loop module it is
  checked after each iteration and breaks the loop; `stop_after_all_iters_if` is checked once a
  loop or branchall is done.
- `sleep` on a step delays the step after it; `timeout` kills the step's process.
- `suspend` on a (script) step makes it an approval step: once its job succeeded, the flow waits for
  `required_events` resumes through the step's resume URLs (`wmill.get_resume_urls()`, or `scripts/wm job
  approve`), or one cancel. The step after it sees `resume` (the last payload), `resumes` and `approvers`. A
  cancel fails the flow with SuspendedDisapproved, running out of `timeout` (default 30 min) with
  SuspendedTimedOut, unless `continue_on_disapprove_timeout`: then `resume` is `{"error": ...}`.
"""

import asyncio
import itertools
import json
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from embedded.jseval import ExprError
from embedded.runner.context import Run
from embedded.runner.errors import InvalidRun
from embedded.runner.jobs import Job, ResumeEvent
from embedded.runner.launch import job_dir, launch
from embedded.runner.spec import (
    BranchAll, BranchOne, Flow, ForLoop, Identity, Module, RawScript, Script, Static, Subflow, Transform,
    WhileLoop,
)


class StepFailed(Exception):
    """A step failed and nothing handled it (yet); `result` is the failed job's result."""

    def __init__(self, step_id: str, error: dict[str, Any], result: Any = None) -> None:
        super().__init__(error.get("message"))
        self.step_id = error.setdefault("step_id", step_id)
        self.error = error
        self.result = {"error": error} if result is None else result


@dataclass
class Outcome:
    result: Any
    stopped: bool = False  # a stop_after_if ended the enclosing list of steps
    skipped: bool = False  # ... with skip_if_stopped
    skipped_step: bool = False  # skip_if skipped the step: no job ran (an approval step does not wait)


@dataclass
class Scope:
    """Where steps run: a flow, or a loop iteration or branch inside it."""

    flow: Flow
    job: Job  # the flow job the steps belong to
    flow_input: dict[str, Any]
    results: dict[str, Any]  # step id -> result, this scope's and the enclosing ones'
    label: str = ""  # prefix naming the steps in progress lines, e.g. "loop[3]."
    resume: dict[str, Any] | None = None  # after an approval step: resume, resumes, approvers for the next step

    def nested(self, label: str, flow_input: dict[str, Any] | None = None) -> "Scope":
        return replace(
            self, label=self.label + label, results=dict(self.results),
            flow_input=self.flow_input if flow_input is None else flow_input,
        )


async def run_flow_job(
    run: Run, flow: Flow, args: dict[str, Any], parent: Job | None = None, step_id: str | None = None,
    label: str | None = None, job_id: str | None = None,
) -> Any:
    job = run.jobs.add("flow", flow.path, label or flow.path, args, parent, step_id, job_id)
    scope = Scope(flow, job, args, {}, f"{job.label}." if parent else "")
    run.report.started(job)
    t0 = time.monotonic()
    try:
        try:
            result = (await run_modules(run, scope, flow.modules)).result
        except StepFailed as failed:
            result = await _failure_module(run, scope, failed)
    except StepFailed as failed:
        job.finish(False, failed.result)
        run.report.failed(job.label, time.monotonic() - t0, failed.error)
        raise
    job.finish(True, result)
    run.report.succeeded(job, time.monotonic() - t0, result)
    return result


async def run_script_job(run: Run, path: str, args: dict[str, Any], job_id: str | None = None) -> Any:
    job = run.jobs.add("script", path, path, args, job_id=job_id)
    return _result(job, await launch(run, job, run.ws.script_file(path), path.replace("/", ".")))


async def run_modules(run: Run, scope: Scope, modules: list[Module]) -> Outcome:
    out = Outcome(scope.flow_input)
    for before, module in zip([None, *modules], modules):
        if before and before.sleep:
            seconds = await _value(run, scope, before.sleep, out.result, before.id)
            run.report.note("sleep", scope.label + before.id, f"{seconds}s before {module.id}")
            await asyncio.sleep(float(seconds))
        resume, scope.resume = scope.resume, None
        out = await run_step(run, replace(scope, resume=resume) if resume else scope, module, out.result)
        scope.results[module.id] = out.result
        if out.stopped:
            break
        if module.suspend and not out.skipped_step:
            scope.resume = await _suspend(run, scope, module, out.result)
    return out


async def _suspend(run: Run, scope: Scope, module: Module, result: Any) -> dict[str, Any]:
    """Wait at an approval step for its resume events; what the next step sees as resume/resumes/approvers."""
    assert module.suspend is not None
    s = module.suspend
    label = scope.label + module.id
    step_job = next((j for j in reversed(run.jobs.children(scope.job)) if j.step_id == module.id), None)
    if step_job is None:
        raise StepFailed(module.id, {"name": "SuspendError", "message": "no job of the approval step to resume"})
    timeout = float(s.timeout if s.timeout is not None else 30 * 60)
    urls = run.api.resume_urls(step_job.id, random.randrange(1 << 30))
    pending = _approval_file(run, step_job)
    pending.parent.mkdir(parents=True, exist_ok=True)
    pending.write_text(json.dumps({
        "job": step_job.id, "flow_job": scope.job.id, "root_job": scope.job.root.id, "flow": scope.flow.path,
        "step": module.id, "required_events": s.required_events, "timeout_s": timeout, **urls,
        "resume_form": s.resume_form.schema_ if s.resume_form else None, "request": result,
    }, indent=2, default=str))
    scope.job.suspended = s.required_events
    run.report.note("suspend", label, f"waiting for {s.required_events} approval(s), up to {timeout:g}s: "
                                      f"scripts/wm job approve|reject {scope.job.root.id}")
    try:
        events = await run.jobs.wait_resumes(step_job.id, s.required_events, timeout)
    finally:
        scope.job.suspended = 0
        pending.unlink(missing_ok=True)
    denied = next((e for e in events or [] if not e.approved), None)
    if events is None or denied:
        error = ({"name": "SuspendedDisapproved", "message": f"Disapproved by {denied.approver or 'unknown'}"}
                 if denied else {"name": "SuspendedTimedOut", "message": "Timed out waiting to be resumed"})
        if denied and isinstance(denied.payload, dict) and isinstance(denied.payload.get("reason"), str):
            error["message"] += f": {denied.payload['reason']}"
        run.report.note("resume", label, error["message"])
        if not s.continue_on_disapprove_timeout:
            raise StepFailed(module.id, error)
        events = [e for e in events or [] if e.approved] + [ResumeEvent(-1, None, False, {"error": error})]
    else:
        run.report.note("resume", label, f"approved by {', '.join(e.approver or 'anonymous' for e in events)}")
    return {"resume": events[-1].payload, "resumes": [e.payload for e in events],
            "approvers": [e.approver or "anonymous" for e in events if e.resume_id >= 0]}


def _approval_file(run: Run, job: Job) -> Any:
    """.state/approvals/<step job>.json: where `scripts/wm job approve` finds a waiting step's resume URLs."""
    return run.ws.state_dir / "approvals" / f"{job.id}.json"


async def run_step(run: Run, scope: Scope, module: Module, previous: Any) -> Outcome:
    label = scope.label + module.id
    if module.skip_if and await _test(run, scope, module.skip_if.expr, previous, module.id):
        run.report.note("skip", label, "skip_if is true")
        return Outcome(previous, skipped_step=True)
    failures = 0
    while True:
        try:
            out = await _attempt(run, scope, module, previous)
            break
        except StepFailed as failed:
            delay = await _retry_delay(run, scope, module, failed, failures)
            if delay is None:
                if module.continue_on_error:
                    run.report.note("continue", label, "continue_on_error: the error is the step's result")
                    return Outcome(failed.result)
                raise
            failures += 1
            run.report.note("retry", label, f"attempt {failures + 1} in {delay:g}s")
            await asyncio.sleep(delay)
    return await _stop_check(run, scope, module, out)


async def _attempt(run: Run, scope: Scope, module: Module, previous: Any) -> Outcome:
    seconds = None if module.timeout is None else float(await _value(run, scope, module.timeout, previous, module.id))
    job_step = isinstance(module.value, (RawScript, Script))  # times its process only, not its wait for a worker
    try:
        async with asyncio.timeout(None if job_step else seconds):
            return await _body(run, scope, module, previous, seconds if job_step else None)
    except TimeoutError:
        if seconds is None:
            raise
        run.report.note("timeout", scope.label + module.id, f"after {seconds:g}s")
        raise StepFailed(module.id, {"name": "TimeoutError", "message": f"step timed out after {seconds:g}s"}) from None


async def _body(run: Run, scope: Scope, module: Module, previous: Any, timeout: float | None) -> Outcome:
    match module.value:
        case Identity():
            return Outcome(previous)
        case RawScript() | Script() as v:
            args = await _args(run, scope, module, v.input_transforms, previous)
            return Outcome(await _script_step(run, scope, module, v, args, timeout))
        case Subflow() as v:
            args = await _args(run, scope, module, v.input_transforms, previous)
            sub = run.flow(v.path)
            try:
                args = sub.with_defaults(args)
            except InvalidRun as e:
                raise StepFailed(module.id, {"name": "InvalidArgs", "message": str(e)}) from None
            return Outcome(await run_flow_job(run, sub, args, scope.job, module.id, scope.label + module.id))
        case ForLoop() as v:
            return await _for_loop(run, scope, module, v, previous)
        case WhileLoop() as v:
            iterations = ((i, i) for i in itertools.count())  # iter.value is the index
            return await _sequential_loop(run, scope, module, v.modules, iterations, v.skip_failures)
        case BranchOne() as v:
            return await _branch_one(run, scope, module, v, previous)
        case BranchAll() as v:
            return await _branch_all(run, scope, module, v)
    raise AssertionError(f"unhandled module type {module.value.type}")


async def _retry_delay(run: Run, scope: Scope, module: Module, failed: StepFailed, failures: int) -> float | None:
    retry = module.retry
    if retry is None:
        return None
    if retry.retry_if and not await _test(run, scope, retry.retry_if.expr, failed.result, module.id):
        return None
    return retry.delay(failures)


async def _stop_check(run: Run, scope: Scope, module: Module, out: Outcome) -> Outcome:
    """stop_after_if (stop_after_all_iters_if on loops and branchall) on a succeeded step."""
    container = isinstance(module.value, (ForLoop, WhileLoop, BranchAll))
    stop = module.stop_after_all_iters_if if container else module.stop_after_if
    if out.stopped or stop is None or not await _test(run, scope, stop.expr, out.result, module.id):
        return out
    if stop.error_message is not None:
        error: dict[str, Any] = {"name": "EarlyStopError", "message": stop.error_message or f"stop after if: {stop.expr}"}
        if stop.error_include_result:
            error["result"] = out.result
        raise StepFailed(module.id, error)
    run.report.note("stop", scope.label + module.id, "stop_after_if is true" + (" (skipped)" if stop.skip_if_stopped else ""))
    return Outcome(out.result, stopped=True, skipped=stop.skip_if_stopped)


async def _failure_module(run: Run, scope: Scope, failed: StepFailed) -> Any:
    module = scope.flow.failure_module
    if module is None:
        raise failed
    try:
        out = await run_step(run, scope, module, failed.result)
    except StepFailed as handler_failed:
        raise StepFailed(failed.step_id, failed.error, handler_failed.result) from None
    if isinstance(out.result, dict) and out.result.get("recover") is True:
        return out.result
    raise StepFailed(failed.step_id, failed.error, out.result)


async def _for_loop(run: Run, scope: Scope, module: Module, loop: ForLoop, previous: Any) -> Outcome:
    items = await _value(run, scope, loop.iterator, previous, module.id)
    if not isinstance(items, list):
        found = json.dumps(items)[:200]
        raise StepFailed(module.id, {"name": "ExecutionErr", "message": f"iterator must be an array, found: {found}"})
    scope.job.loops[module.id] = len(items)  # flow_status' itered_len
    if not loop.parallel:
        return await _sequential_loop(run, scope, module, loop.modules, enumerate(items), loop.skip_failures)
    limit = int(await _value(run, scope, loop.parallelism, previous, module.id)) if loop.parallelism else len(items)
    iterations = [partial(_iteration, run, scope, module, loop.modules, i, item) for i, item in enumerate(items)]
    return Outcome(await _parallel(iterations, limit, [loop.skip_failures] * len(items)))


async def _sequential_loop(
    run: Run, scope: Scope, module: Module, modules: list[Module], iterations: Iterable[tuple[int, Any]],
    skip_failures: bool,
) -> Outcome:
    results: list[Any] = []
    for index, value in iterations:
        try:
            out = await _iteration(run, scope, module, modules, index, value)
        except StepFailed as failed:
            if not skip_failures:
                raise
            results.append(failed.result)
            continue
        results.append(out.result)
        stop = module.stop_after_if
        if out.stopped or (stop and await _test(run, scope, stop.expr, out.result, module.id, all_iters=results)):
            run.report.note("break", f"{scope.label}{module.id}[{index}]", "loop stopped")
            break
    return Outcome(results)


async def _iteration(run: Run, scope: Scope, module: Module, modules: list[Module], index: int, value: Any) -> Outcome:
    return await run_modules(run, scope.nested(f"{module.id}[{index}].", _with_iter(scope.flow_input, index, value)), modules)


def _with_iter(flow_input: dict[str, Any], index: int, value: Any) -> dict[str, Any]:
    """flow_input plus iter = {index, value}; an outer `iter` moves to `iter_parent` (and so on)."""
    out, key, moving = dict(flow_input), "iter", {"index": index, "value": value}
    while key in out:
        out[key], moving = moving, out[key]
        key += "_parent"
    out[key] = moving
    return out


async def _parallel(tasks: list[Callable[[], Awaitable[Outcome]]], limit: int, skip_failure: list[bool]) -> list[Any]:
    """Run all, at most `limit` at a time; once all are done, the first unskipped failure fails the lot."""
    gate = asyncio.Semaphore(max(limit, 1))

    async def one(task: Callable[[], Awaitable[Outcome]]) -> Any:
        async with gate:
            try:
                return (await task()).result
            except StepFailed as failed:
                return failed

    async with asyncio.TaskGroup() as group:
        running = [group.create_task(one(task)) for task in tasks]
    outs = [t.result() for t in running]
    for out, skip in zip(outs, skip_failure):
        if isinstance(out, StepFailed) and not skip:
            raise out
    return [out.result if isinstance(out, StepFailed) else out for out in outs]


async def _branch_one(run: Run, scope: Scope, module: Module, v: BranchOne, previous: Any) -> Outcome:
    chosen, modules = "default", v.default
    for i, branch in enumerate(v.branches):
        if await _test(run, scope, branch.expr, previous, module.id):
            chosen, modules = str(i), branch.modules
            break
    run.report.note("branch", scope.label + module.id, f"took branch {chosen}")
    if not modules:
        return Outcome(previous)
    return await run_modules(run, scope.nested(f"{module.id}[{chosen}]."), modules)


async def _branch_all(run: Run, scope: Scope, module: Module, v: BranchAll) -> Outcome:
    branches = [partial(run_modules, run, scope.nested(f"{module.id}[{i}]."), b.modules) for i, b in enumerate(v.branches)]
    if v.parallel:
        return Outcome(await _parallel(branches, len(branches), [b.skip_failure for b in v.branches]))
    results: list[Any] = []
    for branch, spec in zip(branches, v.branches):
        try:
            out = await branch()
        except StepFailed as failed:
            if not spec.skip_failure:
                raise
            results.append(failed.result)
            continue
        results.append(out.result)
        if out.stopped:
            return Outcome(results, stopped=True, skipped=out.skipped)
    return Outcome(results)


async def _script_step(
    run: Run, scope: Scope, module: Module, v: RawScript | Script, args: dict[str, Any], timeout: float | None
) -> Any:
    label = scope.label + module.id
    if isinstance(v, Script):
        job = run.jobs.add("script", v.path, label, args, scope.job, module.id)
        return _result(job, await launch(run, job, run.ws.script_file(v.path), v.path.replace("/", "."), timeout))
    job = run.jobs.add("script", v.path or f"{scope.flow.path}/{module.id}", label, args, scope.job, module.id)
    file = scope.flow.inline_file(v)
    if file is None:  # code written in the YAML itself
        file = job_dir(run, job).with_suffix(".py")
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(v.content)
    return _result(job, await launch(run, job, file, f"inline_{module.id}", timeout))


def _result(job: Job, out: dict[str, Any]) -> Any:
    if "error" in out:
        raise StepFailed(job.step_id or job.path, out["error"])
    return out["result"]


async def _args(run: Run, scope: Scope, module: Module, transforms: dict[str, Transform], previous: Any) -> dict[str, Any]:
    return {name: await _value(run, scope, t, previous, module.id) for name, t in transforms.items()}


async def _value(run: Run, scope: Scope, transform: Transform, previous: Any, step_id: str) -> Any:
    if isinstance(transform, Static):
        return transform.value
    try:
        return await run.js.eval(transform.expr, _js_scope(scope, transform.expr, previous))
    except ExprError as e:
        raise StepFailed(step_id, {"name": "ExpressionError", "message": str(e)}) from None


async def _test(run: Run, scope: Scope, expr: str, previous: Any, step_id: str, **extra: Any) -> bool:
    try:
        return await run.js.test(expr, _js_scope(scope, expr, previous, **extra))
    except ExprError as e:
        raise StepFailed(step_id, {"name": "ExpressionError", "message": str(e)}) from None


def _js_scope(scope: Scope, expr: str, previous: Any, **extra: Any) -> dict[str, Any]:
    # Only the results an expression names are copied into V8 (all of them for `results[...]`):
    # a loop's steps would otherwise copy every earlier result into every evaluation.
    dynamic = "results[" in expr or "results?.[" in expr
    results = {k: v for k, v in scope.results.items() if dynamic or k in expr}
    resume = scope.resume or {}
    return {"flow_input": scope.flow_input, "results": results, "previous_result": previous, "result": previous,
            **resume, **extra}
