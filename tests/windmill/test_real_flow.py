"""The real process_document, started through scripts/serve (Azurite and the simulated LLM pool) with
scripts/trigger and a token scoped to it: the stages' wmill.set_progress (f/core/progress.py) reaches
the API, the steps' results come back, and the token cannot read the matter store's resource."""

import json
import os
import queue
import signal
import subprocess
import threading
import time

import httpx

from embedded.azurite import start_azurite
from embedded.samples import generate_matter
from f.core.layout import MatterPaths
from f.core.storage import open_store
from f.pipeline.sources import add_source
from tests.windmill.conftest import ROOT

MATTER, FLOW = "M-2024-0137", "f/matter/process_document"


async def test_process_document_through_the_local_api(tmp_path):
    sample = generate_matter(tmp_path / "samples", matter_id=MATTER, n_docs=1)[0]
    state = tmp_path / "state"
    with start_azurite(state / "azurite", tmp_path / "logs") as azurite:
        config = {"container": "matters", "connection_string": azurite.connection_string}
        async with open_store(config, MatterPaths(MATTER).prefix, create_container=True) as store:
            await add_source(store, MatterPaths(MATTER).doc(sample.name), sample.pdf_path.read_bytes(), sample.pdf_path.name)

    env = {k: v for k, v in os.environ.items() if not k.startswith("WM_")} | {"MATTER_STATE_DIR": str(state)}
    serve = subprocess.Popen([str(ROOT / "scripts" / "serve"), "--port", "0", "--max-jobs", "1"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in serve.stdout], daemon=True).start()  # type: ignore[union-attr]
    try:
        found: dict[str, str] = {}
        deadline = time.monotonic() + 120
        while "WM_ADMIN_TOKEN" not in found:
            for word in lines.get(timeout=max(0.1, deadline - time.monotonic())).split():
                if word.startswith("WM_") and "=" in word:
                    found.update([word.split("=", 1)])
        url, admin = found["WM_BASE_URL"], found["WM_ADMIN_TOKEN"]
        http = httpx.Client(base_url=url, timeout=30)
        token = http.post("/api/users/tokens/create", headers={"Authorization": f"Bearer {admin}"},
                          json={"label": "caller", "scopes": [f"jobs:run:flows:{FLOW}"]}).text

        done = subprocess.run([str(ROOT / "scripts" / "trigger"), FLOW, "-d",
                               json.dumps({"matter_id": MATTER, "doc_id": sample.name, "k": 2, "review": False})],
                              env=env | {"WM_BASE_URL": url, "WM_WORKSPACE": "local", "WM_TOKEN": token},
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        result = json.loads(done.stdout)
        assert result["doc_id"] == sample.name and result["document_type"] == sample.truth.document_type
        for step in ("ingest", "split", "extract", "score"):
            assert f"/6 {step}" in done.stderr, step  # 6 steps: the review branch is the last
        job_id = done.stderr.split("as job ")[1].split()[0]

        admin_h = {"Authorization": f"Bearer {admin}"}
        status = http.get(f"/api/w/local/jobs_u/get/{job_id}", headers=admin_h).json()["flow_status"]
        assert [m["type"] for m in status["modules"]] == ["Success"] * 6
        extract = next(m for m in status["modules"] if m["id"] == "extract")
        batch = http.get(f"/api/w/local/jobs_u/get/{extract['flow_jobs'][0]}", headers=admin_h).json()
        assert batch["progress"] == 99, "f/core/progress.py reports through wmill.set_progress"
        caller_h = {"Authorization": f"Bearer {token}"}
        assert http.get("/api/w/local/resources/get_value_interpolated/f/matter/store", headers=caller_h).status_code == 403
        assert http.get(f"/api/w/local/jobs_u/get/{extract['flow_jobs'][0]}", headers=caller_h).status_code == 403
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
