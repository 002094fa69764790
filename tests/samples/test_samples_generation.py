import json
import random
import re
import subprocess
from datetime import date
from pathlib import Path

import pypdfium2 as pdfium
from PIL import Image, ImageChops, ImageStat

from embedded.samples import SampleDoc, SampleTruth, check_truth, degrade, generate_matter, value_forms
from f.extraction.schema import CORE_FIELDS

ROOT = Path(__file__).resolve().parents[2]
TYPES = {"engagement_letter", "contract", "court_filing", "invoice", "correspondence"}


def norm(s: str) -> str:
    return " ".join(s.split()).casefold()


def body(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not re.search(r"(?i)page \d+ of \d+", line))


def test_same_seed_same_bytes(matter: list[SampleDoc], tmp_path: Path) -> None:
    again = generate_matter(tmp_path)
    assert [d.name for d in again] == [d.name for d in matter]
    for a, b in zip(matter, again):
        assert a.pdf_path.read_bytes() == b.pdf_path.read_bytes(), a.name
        assert a.truth_path.read_bytes() == b.truth_path.read_bytes(), a.name


def test_other_seed_other_matter(matter: list[SampleDoc], tmp_path: Path) -> None:
    other = generate_matter(tmp_path, seed=8, n_docs=2, scans=False)
    assert other[0].pdf_path.read_bytes() != matter[0].pdf_path.read_bytes()


def test_default_matter_is_small_and_varied(matter: list[SampleDoc]) -> None:
    truths = [d.truth for d in matter]
    assert len(truths) == 6
    assert TYPES <= {t.document_type for t in truths}
    assert 16 <= sum(t.pages for t in truths) <= 24
    assert 3 <= sum(len(t.scanned_pages) for t in truths) <= 6
    assert any(t.scanned_pages == list(range(1, t.pages + 1)) for t in truths), "a fully scanned document"
    assert sum(0 < len(t.scanned_pages) < t.pages for t in truths) >= 2, "documents with some scanned pages"
    assert sum(bool(t.split_fields) for t in truths) >= 2
    contract = next(t for t in truths if t.document_type == "contract")
    assert 4 <= contract.pages <= 8
    for t in truths:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+\.pdf", t.source_name), t.source_name
    assert len({t.source_name for t in truths}) == len(truths)


def test_truth_files(matter: list[SampleDoc]) -> None:
    for d in matter:
        raw = json.loads(d.truth_path.read_text())
        assert {"source_name", "document_type", "fields", "pages", "scanned_pages", "split_fields",
                "field_pages"} <= raw.keys()
        assert raw["source_name"] == d.pdf_path.name
        fields = raw["fields"]
        assert list(fields) == list(CORE_FIELDS)
        assert fields["document_type"] == raw["document_type"]
        assert date.fromisoformat(fields["document_date"])
        assert isinstance(fields["signatories"], list)
        if fields["total_amount"] is not None:
            assert set(fields["total_amount"]) == {"value", "currency"}
            assert isinstance(fields["total_amount"]["value"], float) and fields["total_amount"]["currency"] == "USD"
        if raw["document_type"] != "court_filing":
            assert fields["court"] is None and fields["case_number"] is None
        for name, page in raw["field_pages"].items():
            assert fields[name] not in (None, []) and 1 <= page <= raw["pages"]
        assert set(raw["split_fields"]) <= set(raw["field_pages"])
        assert SampleTruth.model_validate(raw) == d.truth


def test_pdfs_open_with_text_layer_except_scans(matter: list[SampleDoc], texts: dict[str, list[str]]) -> None:
    for d in matter:
        pdf = pdfium.PdfDocument(d.pdf_path)
        assert len(pdf) == d.truth.pages
        for n in range(1, len(pdf) + 1):
            text = pdf[n - 1].get_textpage().get_text_range()
            assert text == texts[d.truth.source_name][n - 1]
            kinds = {obj.type for obj in pdf[n - 1].get_objects()}
            if n in d.truth.scanned_pages:
                assert text.strip() == "", f"{d.name} p{n} is scanned but has a text layer"
                assert kinds == {pdfium.raw.FPDF_PAGEOBJ_IMAGE}
            else:
                assert len(text) > 300, f"{d.name} p{n} has no text layer"
                assert f"Page {n} of {d.truth.pages}" in text
        pdf.close()


def test_text_pages_contain_the_truth(matter: list[SampleDoc], texts: dict[str, list[str]]) -> None:
    checked = 0
    for d in matter:
        t, pages = d.truth, texts[d.truth.source_name]
        for name, page in t.field_pages.items():
            forms = [norm(f) for f in value_forms(name, t.fields[name])]
            if page in t.scanned_pages or not forms:
                continue
            here = norm(body(pages[page - 1]))
            if name in t.split_fields:
                joined = norm(body(pages[page - 1]) + "\n" + body(pages[page]))
                assert any(f in joined for f in forms), (t.source_name, name)
                assert not any(f in here for f in forms), f"{t.source_name}: {name} is not split"
            elif name == "signatories":
                assert forms[0] in here and all(f in norm(" ".join(pages[page - 1:])) for f in forms)
            else:
                assert any(f in here for f in forms), f"{t.source_name}: {name}={t.fields[name]!r} not on p{page}"
            checked += 1
    assert checked >= 25


def test_check_truth_catches_a_wrong_truth(matter: list[SampleDoc], texts: dict[str, list[str]]) -> None:
    d = next(d for d in matter if d.truth.split_fields)
    pages = texts[d.truth.source_name]
    assert check_truth(pages, d.truth) == []
    wrong = d.truth.model_copy(deep=True)
    wrong.fields["client_name"] = "Nobody Holdings LLC"
    assert any("client_name" in p for p in check_truth(pages, wrong))
    unsplit = d.truth.model_copy(deep=True)
    unsplit.split_fields = []
    assert any("governing_law" in p for p in check_truth(pages, unsplit))


def test_injection_is_in_the_invoice(matter: list[SampleDoc], texts: dict[str, list[str]]) -> None:
    inv = next(d for d in matter if d.truth.document_type == "invoice")
    assert inv.truth.injection and norm("ignore all previous instructions") in norm(" ".join(texts[inv.pdf_path.name]))


def test_degradation_levels() -> None:
    page = Image.new("L", (400, 300), 255)
    page.paste(0, (50, 50, 350, 60))
    page.paste(0, (50, 100, 300, 110))
    clean = degrade(page, "clean", random.Random(1))
    noisy = degrade(page, "noisy", random.Random(1))
    assert clean.tobytes() == degrade(page, "clean", random.Random(1)).tobytes()
    diff = lambda img: ImageStat.Stat(ImageChops.difference(page, img)).mean[0]
    assert 0 < diff(clean) < diff(noisy)


def test_more_documents_repeat_the_kinds(tmp_path: Path) -> None:
    docs = generate_matter(tmp_path, matter_id="ACME-7", n_docs=8, scans=False)
    assert len({d.pdf_path for d in docs}) == 8
    assert all(not d.truth.scanned_pages and d.truth.matter_id == "ACME-7" for d in docs)
    assert docs[6].truth.document_type == docs[0].truth.document_type
    assert docs[6].truth.fields["document_date"] > docs[0].truth.fields["document_date"]


def test_cli(tmp_path: Path) -> None:
    level = "noisy"
    cmd = [str(ROOT / "scripts/make-samples"), "--out", "m", "--docs", "5", "--seed", "3", "--scan-level", level]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, check=False)
    assert out.returncode == 0, out.stderr
    assert "5 documents" in out.stderr
    truths = [SampleTruth.model_validate_json(p.read_text()) for p in sorted((tmp_path / "m").glob("*.truth.json"))]
    assert len(truths) == 5 and {t.scan_level for t in truths if t.scanned_pages} == {level}
