"""API tokens and their scopes, checked the way Windmill checks them.

Source: windmill-labs/windmill backend/windmill-api-auth/src/scopes.rs (ScopeDefinition,
check_route_access, scope_grants_access, RUN_WHITELISTED_GET_PATHS, job_read_run_confinement) and
lib.rs (check_scopes, ensure_scopes_within_caller). Three layers, as there:

1. route_access: every request of a scoped token needs a scope for the route's domain and action
   (GET is read, POST write, run endpoints run). `jobs:run` grants only the by-id reads a caller
   needs to follow a run, never jobs/list, resources or variables.
2. check_scope: a handler asks for a path scope, e.g. `jobs:run:flows:f/matter/process_matter`.
3. read_confinement: a token whose jobs scopes are all path- or kind-scoped `jobs:run` reads only
   jobs of the runnables it may start.

A token with no scopes (or only `if_jobs:filter_tags:` ones) is unscoped: it has its user's rights.
"""

import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

TAG_FILTER = "if_jobs:filter_tags:"

SCRIPT_RUNS = ("jobs/run/p", "jobs/run/h", "jobs/run_wait_result/p", "jobs/run_wait_result/h",
               "jobs/run/preview_bundle", "jobs/run/preview", "jobs/run_and_stream/p", "jobs/run_and_stream/h")
FLOW_RUNS = ("jobs/run/f", "jobs/run_wait_result/f", "jobs/run/preview_flow", "jobs/restart/f",
             "jobs/flow/resume", "jobs/run_and_stream/f")
RUN_ACTIONS = ("jobs/resume/", "jobs/run/batch_rerun_jobs", "jobs/run/workflow_as_code", "jobs/run/dependencies",
               "jobs/run/flow_dependencies", "apps_u/execute_component", "apps_u/upload_s3_file",
               *SCRIPT_RUNS, *FLOW_RUNS)
RUN_READS = (  # RUN_WHITELISTED_GET_PATHS: the by-id reads a jobs:run scope implies
    "jobs_u/get_flow/", "jobs_u/get_root_job_id/", "jobs_u/get/", "jobs_u/get_logs/",
    "jobs_u/get_completed_logs_tail/", "jobs_u/get_flow_all_logs/", "jobs_u/get_flow_all_logs_structured/",
    "jobs_u/get_flow_all_results/", "jobs_u/get_args/", "jobs_u/get_flow_debug_info/", "jobs_u/completed/get/",
    "jobs_u/completed/get_result/", "jobs_u/completed/get_result_maybe/", "jobs_u/completed/get_timing/",
    "jobs_u/dispatch_events/", "jobs_u/getupdate/", "jobs_u/getupdate_sse/", "jobs_u/get_log_file/",
    "jobs/run_progress/", "jobs/dbt_graph/", "jobs/dbt_resumable/", "jobs/dbt_resumable_script/p/",
    "jobs/result_by_id/", "jobs/resume_urls/", "jobs/flow/user_states/", "jobs/job_signature/",
    "jobs/wac_approval_urls/", "jobs/completed/get/", "jobs/completed/get_result/",
    "jobs/completed/get_result_maybe/", "jobs/completed/get_timing/", "jobs/get_otel_traces/",
)
RESOURCE_METADATA = ("resources/list_names/", "resources/exists/", "resources/type/")
_DOMAINS = {  # ScopeDomain::from_str; aliases map to their domain
    **{d: d for d in (
        "jobs scripts data_metrics flows flow_conversations apps variables resources schedules folders users "
        "groups workspaces http_triggers websocket_triggers kafka_triggers nats_triggers mqtt_triggers "
        "amqp_triggers sqs_triggers gcp_triggers azure_triggers postgres_triggers email_triggers audit settings "
        "workers service_logs configs oauth ai ai_skills teams native_triggers git_sync capture drafts favorites "
        "inputs job_helpers concurrency_groups oidc openapi acls raw_apps agent_workers mcp docs indexer"
    ).split()},
    "jobs_u": "jobs", "apps_u": "apps", "srch": "indexer", "github_app": "git_sync",
}
_ACTIONS = {"read": "read", "write": "write", "delete": "write", "run": "run"}


class Denied(Exception):
    """A request the token may not make; `status` is what Windmill answers (403, or 400 for an unknown route)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Scope:
    domain: str
    action: str
    kind: str | None = None  # jobs:run:<kind>, "flows" or "scripts"
    resources: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, text: str) -> "Scope":
        parts = text.split(":")
        run = parts[:2] == ["jobs", "run"]
        if len(parts) == 2:
            return cls(parts[0], parts[1])
        if len(parts) == 3:
            return cls(parts[0], parts[1], parts[2]) if run else cls(parts[0], parts[1], None, tuple(parts[2].split(",")))
        if len(parts) == 4 and run:
            return cls("jobs", "run", parts[2], tuple(parts[3].split(",")))
        raise ValueError(f"invalid scope: {text!r}")

    def __str__(self) -> str:
        return ":".join([self.domain, self.action, *filter(None, [self.kind, ",".join(self.resources or ())])])

    def includes(self, other: "Scope") -> bool:
        """ScopeDefinition::includes: does this scope grant `other` (a handler's required scope)?"""
        if self.domain != other.domain:
            return False
        same = self.action == other.action or (self.action, other.action) == ("write", "read")
        if not same and not (self.domain == "apps" and (self.action, other.action) == ("write", "run")):
            return False
        if self.domain == "jobs" and self.action == "run":
            if self.kind is None:
                return True
            if self.kind != other.kind:
                return False
        if self.resources is None:
            return True
        if other.resources is None:
            return False
        return any(_matches(mine, wanted) or _matches(wanted, mine)
                   for mine in self.resources for wanted in other.resources) or "*" in self.resources + other.resources


def _matches(pattern: str, path: str) -> bool:
    if pattern == path:
        return True
    if not pattern.endswith("/*"):
        return False
    prefix = pattern[:-2]
    return path == prefix or path.startswith(prefix + "/")


def restricting(scopes: Sequence[str] | None) -> list[str]:
    """The scopes that restrict a token; empty means unscoped."""
    return [s for s in scopes or () if not s.startswith(TAG_FILTER)]


def route_access(scopes: Sequence[str] | None, path: str, method: str) -> None:
    """check_route_access: raise Denied unless some scope grants this route's domain and action."""
    if not restricting(scopes):
        return
    action = _action(method, path)
    domain, kind, suffix = _route(path)
    if domain == "mcp":
        if any(s.startswith("mcp:") for s in restricting(scopes)):
            return
        raise Denied(403, "Access denied. Required scope: mcp:*")
    for text in restricting(scopes):
        try:
            if _grants(Scope.parse(text), domain, action, kind, suffix):
                return
        except ValueError:
            continue
    raise Denied(403, f"Access denied. Required scope: {domain}:{action}" + (f":{kind}" if kind else ""))


def read_only_access(path: str, method: str) -> None:
    """check_read_only_for_route: a read_only token makes only read requests."""
    if _action(method, path) != "read":
        raise Denied(403, "Token is read-only. Mutating endpoints are not allowed.")


def check_scope(scopes: Sequence[str] | None, required: str) -> None:
    """check_scopes: a handler's path-level requirement, e.g. jobs:run:flows:f/matter/process_matter."""
    if not restricting(scopes):
        return
    want = Scope.parse(required)
    for text in restricting(scopes):
        try:
            if Scope.parse(text).includes(want):
                return
        except ValueError:
            continue
    raise Denied(403, f"Required scope: {want}")


def read_confinement(scopes: Sequence[str] | None) -> list[Scope] | None:
    """job_read_run_confinement: the jobs:run scopes job reads are confined to; None when unconfined."""
    confined: list[Scope] = []
    for text in restricting(scopes):
        try:
            scope = Scope.parse(text)
        except ValueError:
            continue
        if _DOMAINS.get(scope.domain) != "jobs" or scope.action not in _ACTIONS:
            continue
        if scope.action != "run" or (scope.kind is None and scope.resources is None):
            return None  # jobs:read, jobs:write or a bare jobs:run reads any job
        confined.append(scope)
    return confined or None


def admits(confinement: list[Scope] | None, kind: str, path: str) -> bool:
    """run_confinement_admits: may a confined token read a job that ran `path` as `kind` (flows|scripts)?"""
    wanted = Scope("jobs", "run", kind, (path,))
    return confinement is None or any(scope.includes(wanted) for scope in confinement)


def covers(caller: Sequence[str] | None, requested: Sequence[str] | None) -> bool:
    """ensure_scopes_within_caller, simplified: a scoped caller mints only tokens within its own scopes."""
    mine = restricting(caller)
    if not mine:
        return True
    wanted = restricting(requested)
    if not wanted:
        return False
    parsed = [Scope.parse(s) for s in mine]
    return all(any(p.includes(Scope.parse(w)) for p in parsed) for w in wanted)


def _action(method: str, path: str) -> str:
    if any(run in path for run in RUN_ACTIONS):
        return "run"
    return "read" if method.upper() in ("GET", "HEAD", "OPTIONS") else "write"


def _route(path: str) -> tuple[str, str | None, str]:
    parts = path.split("/")
    if len(parts) >= 5 and parts[1] == "api" and parts[2] == "w":
        suffix = "/".join(parts[4:])
        return _domain(parts[4], path), _kind(suffix), suffix
    if len(parts) >= 3 and parts[1] == "api":
        return _domain(parts[2], path), None, "/".join(parts[2:])
    raise Denied(400, f"Could not extract domain from route: {path}")


def _domain(part: str, path: str) -> str:
    if part not in _DOMAINS:
        raise Denied(400, f"Could not extract domain from route: {path}")
    return _DOMAINS[part]


def _kind(suffix: str) -> str | None:
    if not suffix.startswith("jobs") or suffix.startswith(("jobs/run/preview", "jobs/run_wait_result/preview")):
        return None
    if suffix.startswith(FLOW_RUNS):
        return "flows"
    return "scripts" if suffix.startswith(SCRIPT_RUNS) else None


def _grants(scope: Scope, domain: str, action: str, kind: str | None, suffix: str) -> bool:
    if _DOMAINS.get(scope.domain) != domain or scope.action not in _ACTIONS:
        return False
    have = _ACTIONS[scope.action]
    if domain == "resources" and have == "run":
        return action == "read" and (suffix == "resources/list" or suffix.startswith(RESOURCE_METADATA))
    if domain == "apps" and have == "write" and action == "run":
        return True
    if domain == "jobs" and have == "run" and action == "read":
        return suffix.startswith(RUN_READS)
    if not (have == action or (have in ("write", "run") and action == "read")):
        return False
    # jobs:run:<kind> runs only that kind; its path, if any, is the handler's to check (check_scope)
    return not (domain == "jobs" and action == "run" and scope.kind is not None and scope.kind != kind)


@dataclass(frozen=True)
class Token:
    label: str
    scopes: tuple[str, ...] | None  # None: unscoped
    owner: str = "local"  # the username it acts as
    read_only: bool = False
    expires_at: datetime | None = None


class Tokens:
    """The tokens a local API accepts, by secret; created by POST /api/users/tokens/create."""

    def __init__(self) -> None:
        self._by_secret: dict[str, Token] = {}

    def create(self, label: str, scopes: Sequence[str] | None = None, *, read_only: bool = False,
               expires_at: datetime | None = None) -> str:
        for scope in restricting(scopes):
            Scope.parse(scope)  # ValueError for a malformed scope, as Windmill refuses it
        secret = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))  # as Windmill's
        self._by_secret[secret] = Token(label, tuple(scopes) if scopes else None, read_only=read_only,
                                        expires_at=expires_at)
        return secret

    def get(self, secret: str | None) -> Token | None:
        token = self._by_secret.get(secret or "")
        if token and token.expires_at and token.expires_at <= datetime.now(timezone.utc):
            return None
        return token
