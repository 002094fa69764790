"""Scope checks as windmill-api-auth's scopes.rs and its own tests state them."""

import pytest

from embedded.tokens import Denied, Scope, Tokens, admits, check_scope, covers, read_confinement, route_access

JOB = "/api/w/ws/jobs_u/completed/get_result/019ff012-6b1e-0d6b-fc0d-0c85d34d9cec"
RUN = ["jobs:run:flows:f/matter/process_matter"]


def allowed(scopes: list[str], path: str, method: str = "GET") -> bool:
    try:
        route_access(scopes, path, method)
    except Denied:
        return False
    return True


def test_parsing():
    assert Scope.parse("jobs:read") == Scope("jobs", "read")
    assert Scope.parse("jobs:run:scripts") == Scope("jobs", "run", "scripts")
    assert Scope.parse("jobs:run:flows:f/folder/*") == Scope("jobs", "run", "flows", ("f/folder/*",))
    assert Scope.parse("scripts:read:path1,path2,f/folder/*").resources == ("path1", "path2", "f/folder/*")
    with pytest.raises(ValueError):
        Scope.parse("scripts:read:a:b")


def test_run_scope_reaches_the_poll_routes_but_not_listing_resources_or_variables():
    for scopes in (["jobs:run"], ["jobs:run:scripts:u/admin/script"], RUN):
        assert allowed(scopes, JOB)
        assert allowed(scopes, "/api/w/ws/jobs_u/get/1234")
        assert not allowed(scopes, "/api/w/ws/jobs/list")
        assert not allowed(scopes, "/api/w/ws/resources/get_value_interpolated/f/matter/store")
        assert not allowed(scopes, "/api/w/ws/variables/get_value/f/llm/key")
        assert not allowed(scopes, "/api/w/ws/jobs_u/queue/cancel/1234", "POST")  # cancel needs jobs:write
    assert allowed(["jobs:read"], "/api/w/ws/jobs/list")


def test_run_routes_need_the_right_kind_then_the_right_path():
    assert allowed(RUN, "/api/w/ws/jobs/run/f/f/matter/process_document", "POST")  # route level: kind only
    assert not allowed(RUN, "/api/w/ws/jobs/run/p/f/matter/split", "POST")
    assert not allowed(["jobs:write"], "/api/w/ws/jobs/run/p/u/admin/script", "POST")
    check_scope(RUN, "jobs:run:flows:f/matter/process_matter")
    with pytest.raises(Denied, match="jobs:run:flows:f/matter/process_document"):
        check_scope(RUN, "jobs:run:flows:f/matter/process_document")
    check_scope(["jobs:run:flows:f/matter/*"], "jobs:run:flows:f/matter/process_document")
    with pytest.raises(Denied):
        check_scope(["jobs:run:flows:f/matt/*"], "jobs:run:flows:f/matter/x")  # prefix stops at a /
    check_scope(None, "jobs:run:flows:anything")  # unscoped token
    check_scope(["if_jobs:filter_tags:deno"], "jobs:run:flows:anything")  # tag filters do not scope


def test_unknown_domains_are_refused_to_scoped_tokens_only():
    with pytest.raises(Denied) as e:
        route_access(RUN, "/api/w/ws/job_metrics/get_progress/1", "GET")
    assert e.value.status == 400
    route_access(None, "/api/w/ws/job_metrics/get_progress/1", "GET")


def test_run_scopes_confine_job_reads_by_kind_and_path():
    confinement = read_confinement(["jobs:run:flows:f/team/*"])
    assert admits(confinement, "flows", "f/team/etl")
    assert not admits(confinement, "scripts", "f/team/etl")
    assert not admits(confinement, "flows", "f/other/etl")
    assert admits(read_confinement(["jobs:run:scripts"]), "scripts", "u/admin/anything")
    for unconfined in (["jobs:read"], ["jobs:run"], ["jobs:run:scripts:u/a/s", "jobs:read"], ["if_jobs:filter_tags:x"], None):
        assert read_confinement(unconfined) is None


def test_minting_stays_within_the_callers_scopes():
    assert covers(None, RUN) and covers(None, None)
    assert covers(["jobs:run:flows:f/matter/*", "users:write"], RUN)
    assert not covers(RUN, ["jobs:run:flows:f/matter/process_document"])
    assert not covers(RUN, None)  # a scoped caller never mints an unscoped token
    tokens = Tokens()
    secret = tokens.create("t", RUN)
    assert len(secret) == 32 and secret.isalnum() and tokens.get(secret).scopes == tuple(RUN)
    assert tokens.get("nope") is None
    with pytest.raises(ValueError):
        tokens.create("bad", ["jobs:run:flows:a:b:c"])
