"""The real `wmill` client, inside job processes, against the local API."""

import httpx
import pytest

from embedded.runner import JobFailed, Workspace, run_flow, run_script
from embedded.runner.jobs import Jobs
from embedded.wmapi import WindmillApi

CLIENT = """
import wmill

def main(tick: int):
    wmill.set_progress(40)
    state = wmill.get_state() or {"count": 0}
    wmill.set_state({"count": state["count"] + tick})
    wmill.set_resource("f/t/made_here", {"seen": tick})
    return {
        "store": wmill.get_resource("f/t/store"),
        "secret": wmill.get_variable("f/t/secret"),
        "state": wmill.get_state(),
        "progress": wmill.get_progress(),
        "made": wmill.get_resource("f/t/made_here"),
        "root": wmill.get_root_job_id(),
    }
"""

RESOURCES = {
    "resources/local/f/t/store.resource.yaml": """
        value:
          conn: "$var:f/t/conn"
          inner: "$res:f/t/inner"
        resource_type: blob
        description: test store
    """,
    "resources/local/f/t/inner.resource.yaml": "value: {token: '$var:f/t/secret'}\nresource_type: any\n",
    "resources/local/f/t/secret.variable.yaml": "value: s3cret\nis_secret: true\n",
}


async def test_script_uses_resources_variables_progress_and_state(put, tmp_path, capsys):
    put({"f/t/client.py": CLIENT, **RESOURCES, "flows/client/flow.yaml": """
        summary: client
        value:
          modules:
            - id: use
              value: {type: script, path: f/t/client, input_transforms: {tick: {type: javascript, expr: flow_input.tick}}}
    """})
    ws = Workspace(tmp_path, variables={"f/t/conn": "DefaultEndpointsProtocol=http;live"})
    first = await run_flow(ws, "f/matter/client", {"tick": 1})
    assert first["store"] == {"conn": "DefaultEndpointsProtocol=http;live", "inner": {"token": "s3cret"}}
    assert first["secret"] == "s3cret"
    assert first["state"] == {"count": 1}
    assert first["progress"] == 40
    assert first["made"] == {"seen": 1}
    assert "progress use 40%" in " ".join(capsys.readouterr().err.split())
    second = await run_flow(ws, "f/matter/client", {"tick": 5})
    assert second["state"] == {"count": 6}  # state outlives the run, as in Windmill
    assert second["root"] != first["root"]
    # a standalone script has its own state path
    assert (await run_script(ws, "f/t/client", {"tick": 2}))["state"] == {"count": 2}


async def test_missing_resource_fails_the_step(put, ws):
    put({"f/t/get.py": "import wmill\ndef main():\n    return wmill.get_resource('f/t/nothing')\n"})
    with pytest.raises(JobFailed, match="404"):
        await run_script(ws, "f/t/get", {})


async def test_api_requires_the_token_and_the_workspace(put, tmp_path):
    put(RESOURCES)
    ws = Workspace(tmp_path, variables={"f/t/conn": "c"})
    jobs = Jobs()
    job = jobs.add("script", "f/t/x", "x", {})
    async with WindmillApi(ws, jobs, "sekret", lambda job, pct: None) as api, httpx.AsyncClient(base_url=api.url) as http:
        path = "/api/w/local/resources/get_value_interpolated/f/t/store"
        assert (await http.get(path)).status_code == 401
        assert (await http.get(path, headers={"Authorization": "Bearer nope"})).status_code == 401
        auth = {"Authorization": "Bearer sekret"}
        assert (await http.get(path, headers=auth)).json() == {"conn": "c", "inner": {"token": "s3cret"}}
        assert (await http.get(path.replace("/local/", "/other/"), headers=auth)).status_code == 404
        assert (await http.get(f"/api/w/local/jobs_u/get/{job.id}", headers=auth)).json()["running"] is True
        assert (await http.get("/api/w/local/jobs_u/get/nope", headers=auth)).status_code == 404
        assert (await http.get("/api/w/local/variables/get_value/f/x", headers=auth)).status_code == 400
        assert (await http.get("/api/w/local/variables/get_value/f/t/none", headers=auth)).status_code == 404
        unknown = await http.post("/api/w/local/jobs/run/p/f/t/x", headers=auth, json={})
        assert unknown.status_code == 501 and "does not implement POST" in unknown.text
