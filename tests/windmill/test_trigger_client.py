"""scripts/trigger's reading of Windmill's Job objects and step results (no server needed)."""

from embedded.trigger import data_of, describe


def test_progress_lines_from_job_objects():
    assert describe({"type": "QueuedJob", "running": False}) == "queued, waiting for a worker"
    assert describe({"type": "CompletedJob", "success": True}) == "succeeded"
    assert describe({"type": "CompletedJob", "success": False, "canceled": True}) == "canceled"
    assert describe({"type": "QueuedJob", "running": True, "progress": 40}) == "running 40%"
    flow = {"type": "QueuedJob", "running": True, "flow_status": {"step": 1, "modules": [
        {"id": "list_documents", "type": "Success"},
        {"id": "documents", "type": "InProgress", "iterator": {"index": 2, "itered_len": 6},
         "flow_jobs": ["a", "b", "c", "d"], "flow_jobs_success": [True, False, None, None]},
        {"id": "rollup", "type": "WaitingForPriorSteps"}]}}
    assert describe(flow) == "running step 2/3 documents: 1/6 done, 2 running, 1 failed"
    flow["flow_status"] = {"step": 1, "modules": [{"id": "ingest", "type": "Success"},
                                                  {"id": "split", "type": "InProgress", "progress": 35}]}
    assert describe(flow) == "running step 2/2 split 35%"


def test_render_all_results_print_as_their_data():
    assert data_of({"render_all": [{"markdown": "**ok**"}, {"json": {"doc_id": "d1"}}]}) == {"doc_id": "d1"}
    assert data_of({"doc_id": "d1"}) == {"doc_id": "d1"}
    assert data_of({"render_all": [{"markdown": "no data"}]}) == {"render_all": [{"markdown": "no data"}]}
