"""The whole process_document flow on the real local models: a one-page engagement letter, k = 2 (one call
per model), through the local runner as scripts/demo runs it."""

from pathlib import Path

import pytest
from pages import ENGAGEMENT_LETTER, field_correct

from embedded.runner import Workspace, run_flow
from embedded.services import CONTAINER, local_services
from f.core.layout import MatterPaths
from f.core.models import CallRecord, DocumentResult
from f.core.storage import open_store
from f.extraction.profiles import PROFILES
from f.pipeline.sources import add_source
from tests.pdf.pdf_factory import text_pdf

ROOT = Path(__file__).resolve().parents[2]
MATTER = MatterPaths("real-models")
RELIABLE = ("document_type",)
"""Right on this letter whatever the models do: the typed schema writes the type the first page's words tell
(a one-value enum). The small models miss most other fields, and the two disagree, which is what their low
confidence says."""


pytestmark = pytest.mark.timeout(600)


async def test_process_document_on_the_local_models(tmp_path):
    doc = MATTER.doc("engagement-letter")
    async with local_services(pool="local-models", state_dir=tmp_path, persistent=False) as variables:
        config = {"container": CONTAINER, "connection_string": variables["f/matter/blob_connection_string"]}
        async with open_store(config, MATTER.prefix) as store:
            await add_source(store, doc, text_pdf([ENGAGEMENT_LETTER.text], font_size=9), "engagement-letter.pdf")
            workspace = Workspace(ROOT, env="local", variables=variables)
            args = {"matter_id": MATTER.matter_id, "doc_id": doc.doc_id, "pool": "$res:f/llm/pool_local_models",
                    "k": 2, "review": False}
            await run_flow(workspace, "f/matter/process_document", args, max_workers=2)
            result = await store.read_model(doc.result, DocumentResult)
            calls = [await store.read_model(n, CallRecord) for n in await store.list_names(f"{doc.prefix}extractions/")]

    assert len(calls) == 2 and {c.backend for c in calls} == {"local-smollm2", "local-gemma3"}, calls
    assert all(c.prompt_version == PROFILES["compact"].record_version("engagement_letter") and c.output is not None for c in calls)
    for name in RELIABLE:
        assert field_correct(name, result.fields[name].value, ENGAGEMENT_LETTER.truth[name]), result.fields[name]
        assert result.fields[name].page == 1
    dates = [result.fields["document_date"].value] + [c.value for c in result.fields["document_date"].candidates]
    assert ENGAGEMENT_LETTER.truth["document_date"] in dates, "one of the two models reads the date"
    for field in result.fields.values():
        assert 0.0 <= field.confidence <= 1.0
        assert field.evidence is None or " ".join(field.evidence.split()) in " ".join(ENGAGEMENT_LETTER.text.split())
