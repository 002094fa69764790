"""OpenFlow YAML parsed into strict models: any key the runner does not implement is an error.

Field names and defaults follow Windmill's own parser (windmill-types flows.rs). To support a new
module option, add the field to `Module` and handle it in the executor.
"""

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from embedded.runner.errors import InvalidRun
from embedded.runner.workspace import Workspace

INLINE = "!inline "
MAX_RETRY_ATTEMPTS = 1000
MAX_RETRY_SECONDS = 6 * 3600


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Static(Strict):
    type: Literal["static"]
    value: Any = None


class Javascript(Strict):
    type: Literal["javascript"]
    expr: str


Transform = Annotated[Union[Static, Javascript], Field(discriminator="type")]


def _bare_value_as_static(v: Any) -> Any:
    return v if isinstance(v, dict) else {"type": "static", "value": v}


# `timeout: 600` and `parallelism: 4` are accepted by Windmill as well as the transform form.
LooseTransform = Annotated[Transform, BeforeValidator(_bare_value_as_static)]


class Expr(Strict):
    expr: str


class StopAfterIf(Strict):
    expr: str
    skip_if_stopped: bool = False
    error_message: str | None = None
    error_include_result: bool = False


class Constant(Strict):
    attempts: int = 0
    seconds: int = 0


class Exponential(Strict):
    attempts: int = 0
    multiplier: int = 1
    seconds: int = 0
    random_factor: int | None = None


class Retry(Strict):
    constant: Constant = Constant()
    exponential: Exponential = Exponential()
    retry_if: Expr | None = None

    @model_validator(mode="after")
    def _positive_base(self) -> "Retry":
        if self.exponential.attempts > 0 and self.exponential.seconds <= 0:
            raise ValueError("exponential backoff needs seconds >= 1")
        return self

    def delay(self, failures: int) -> float | None:
        """Seconds to wait before the next attempt after `failures` failed ones; None: give up."""
        c, e = self.constant, self.exponential
        if failures >= MAX_RETRY_ATTEMPTS:
            return None
        if failures < c.attempts:
            return c.seconds
        if failures - c.attempts < e.attempts:
            secs = e.multiplier * e.seconds ** (failures + 1)
            if e.random_factor:
                secs += random.choice((1, -1)) * secs * random.randrange(min(e.random_factor, 100)) / 100
            return min(secs, MAX_RETRY_SECONDS)
        return None


class RawScript(Strict):
    type: Literal["rawscript"]
    content: str
    language: Literal["python3"]
    input_transforms: dict[str, Transform] = {}
    lock: str | None = None  # ignored: dependencies come from the venv
    path: str | None = None
    tag: str | None = None  # ignored: no worker tags locally


class Script(Strict):
    type: Literal["script"]
    path: str
    input_transforms: dict[str, Transform] = {}
    tag_override: str | None = None  # ignored: no worker tags locally


class Subflow(Strict):
    type: Literal["flow"]
    path: str
    input_transforms: dict[str, Transform] = {}


class ForLoop(Strict):
    type: Literal["forloopflow"]
    iterator: Transform
    modules: list["Module"]
    skip_failures: bool = True
    parallel: bool = False
    parallelism: LooseTransform | None = None


class WhileLoop(Strict):
    type: Literal["whileloopflow"]
    modules: list["Module"]
    skip_failures: bool = False


class OneBranch(Strict):
    summary: str | None = None
    expr: str
    modules: list["Module"]


class BranchOne(Strict):
    type: Literal["branchone"]
    branches: list[OneBranch]
    default: list["Module"]


class AllBranch(Strict):
    summary: str | None = None
    skip_failure: bool = False
    modules: list["Module"]


class BranchAll(Strict):
    type: Literal["branchall"]
    branches: list[AllBranch]
    parallel: bool = True


class Identity(Strict):
    type: Literal["identity"]


ModuleValue = Annotated[
    Union[RawScript, Script, Subflow, ForLoop, WhileLoop, BranchOne, BranchAll, Identity],
    Field(discriminator="type"),
]


class ResumeForm(Strict):
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")


class Suspend(Strict):
    """An approval step: after the step's job succeeds, the flow waits for `required_events` resumes (or one
    cancel) through the step's resume URLs. `timeout` seconds (Windmill's default: 30 minutes) then fail the
    flow, or, with continue_on_disapprove_timeout, go on with `resume = {"error": ...}`."""

    required_events: int = 1
    timeout: int | None = None
    resume_form: ResumeForm | None = None
    user_auth_required: bool = False  # ignored: the local runner has one user
    user_groups_required: Transform | None = None  # ignored, likewise
    self_approval_disabled: bool = False  # ignored, likewise
    hide_cancel: bool = False
    continue_on_disapprove_timeout: bool = False
    skin: Literal["detailed", "minimal"] | None = None


class Module(Strict):
    id: str
    value: ModuleValue
    summary: str | None = None
    retry: Retry | None = None
    timeout: LooseTransform | None = None
    sleep: LooseTransform | None = None
    skip_if: Expr | None = None
    stop_after_if: StopAfterIf | None = None
    stop_after_all_iters_if: StopAfterIf | None = None
    continue_on_error: bool = False
    suspend: Suspend | None = None

    def children(self) -> list["Module"]:
        v = self.value
        if isinstance(v, (ForLoop, WhileLoop)):
            return v.modules
        if isinstance(v, BranchOne):
            return [m for b in v.branches for m in b.modules] + v.default
        if isinstance(v, BranchAll):
            return [m for b in v.branches for m in b.modules]
        return []


class FlowValue(Strict):
    modules: list[Module]
    failure_module: Module | None = None

    @model_validator(mode="after")
    def _failure_is_a_script(self) -> "FlowValue":
        if self.failure_module and not isinstance(self.failure_module.value, (RawScript, Script)):
            raise ValueError("failure_module must be a script or rawscript")
        return self


class OpenFlow(Strict):
    summary: str = ""
    description: str = ""
    value: FlowValue
    input_schema: dict[str, Any] = Field(default_factory=dict, alias="schema")


def walk(modules: list[Module]) -> list[Module]:
    """Every module, nested ones included, depth first."""
    return [m for top in modules for m in [top, *walk(top.children())]]


@dataclass(frozen=True)
class Flow:
    path: str  # workspace path, e.g. f/matter/extract_all
    dir: Path  # folder holding flow.yaml and its inline files
    spec: OpenFlow

    @property
    def modules(self) -> list[Module]:
        return self.spec.value.modules

    @property
    def failure_module(self) -> Module | None:
        return self.spec.value.failure_module

    def inline_file(self, raw: RawScript) -> Path | None:
        """The file behind `content: '!inline x.py'`; None when the code is written in the YAML."""
        return self.dir / raw.content[len(INLINE):].strip() if raw.content.startswith(INLINE) else None

    def with_defaults(self, args: dict[str, Any]) -> dict[str, Any]:
        """Flow inputs with schema defaults filled in; missing required inputs raise InvalidRun."""
        schema = self.spec.input_schema
        out = dict(args)
        for name, prop in (schema.get("properties") or {}).items():
            if name not in out and isinstance(prop, dict) and "default" in prop:
                out[name] = prop["default"]
        missing = [name for name in schema.get("required") or [] if name not in out]
        if missing:
            raise InvalidRun(f"flow {self.path}: missing required input(s): {', '.join(missing)}")
        return out


def load_flow(ws: Workspace, path: str, _seen: frozenset[str] = frozenset()) -> Flow:
    """Parse and check a flow and, recursively, the scripts, inline files and subflows it uses."""
    file = ws.flow_file(path)
    try:
        raw = yaml.safe_load(file.read_text())
    except yaml.YAMLError as e:
        raise InvalidRun(f"flow {path}: {file} is not valid YAML: {e}") from None
    try:
        flow = Flow(path, file.parent, OpenFlow.model_validate(raw))
    except ValidationError as e:
        raise InvalidRun(f"flow {path}: " + "; ".join(_explain(err, raw) for err in e.errors())) from None
    modules = walk(flow.modules) + ([flow.failure_module] if flow.failure_module else [])
    ids = [m.id for m in modules]
    if dupes := sorted({i for i in ids if ids.count(i) > 1}):
        raise InvalidRun(f"flow {path}: duplicate module id(s): {', '.join(dupes)}")
    for m in modules:
        v = m.value
        if isinstance(v, RawScript) and (inline := flow.inline_file(v)) and not inline.is_file():
            raise InvalidRun(f"flow {path}: module {m.id!r}: inline file not found: {inline}")
        if m.suspend and not isinstance(v, (RawScript, Script)):
            raise InvalidRun(f"flow {path}: module {m.id!r}: suspend is supported on script steps only")
        if isinstance(v, Script):
            ws.script_file(v.path)
        if isinstance(v, Subflow):
            if v.path in _seen | {path}:
                raise InvalidRun(f"flow {path}: module {m.id!r}: subflow {v.path} calls itself")
            load_flow(ws, v.path, _seen | {path})
    return flow


def _explain(err: dict[str, Any], raw: Any) -> str:
    """A pydantic error told in flow terms: which module, which key."""
    node, module_id, where = raw, None, []
    for key in err["loc"]:
        if isinstance(node, dict) and key in node:
            node = node[key]
            where.append(str(key))
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            node = node[key]
            where.append(str(key))
        else:
            continue  # a union tag in the location, not a key of the YAML
        if isinstance(node, dict) and isinstance(node.get("id"), str):
            module_id, where = node["id"], []
    at = f"module {module_id!r}" if module_id else "flow"
    key = str(err["loc"][-1]) if err["loc"] else ""
    if err["type"] == "extra_forbidden":
        return f"{at}: unsupported key {key!r}" + (f" in {'.'.join(where[:-1])}" if where[:-1] else "")
    if err["type"] == "union_tag_invalid":
        field = err["ctx"]["discriminator"].strip("'")
        return f"{at}: unsupported {field} {err['ctx']['tag']!r}"
    if err["type"] == "literal_error" and key == "language":
        return f"{at}: unsupported language {err['input']!r} (only python3)"
    return f"{at}: {'.'.join(where) or key}: {err['msg']}"
