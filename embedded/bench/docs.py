"""Inputs of the performance benchmark: long contracts of a given page count, a share of their pages scanned.

The first pages are the sample contract of `embedded.samples` (so the simulated model finds real fields); the
rest are schedules of numbered clauses, every page different (chunk ids carry their content hash, and two equal
chunks would share their cached calls). Scanned pages are rendered, degraded and put back as image-only pages
with the samples' own helpers. The same arguments give the same bytes; files are cached under .cache/bench/.
"""

import io
import random
import warnings
from pathlib import Path

import pypdfium2 as pdfium

from embedded import samples
from embedded.azurite import ROOT

CACHE = ROOT / ".cache" / "bench" / "docs"
VERSION = 2  # of the layout and the choice of scanned pages: part of the cached file names
MATTER = samples.make_matter("M-BENCH", 7)

_SUBJECTS = ("Service credits", "Reporting", "Security", "Data retention", "Disaster recovery", "Audit rights",
             "Key personnel", "Invoicing", "Acceptance testing", "Change requests", "Escalation", "Subcontracting",
             "Insurance", "Benchmarking", "Transition assistance", "Records", "Business continuity", "Training")
_BODIES = (
    "Provider shall measure the {metric} each calendar month and report it to Client within {days} business days "
    "after the end of the month, together with the root cause of every failure and the corrective action taken.",
    "If the {metric} falls below {pct} percent in any month, Client shall receive a service credit equal to {credit} "
    "percent of the monthly fees for the affected Services, which is not an exclusive remedy.",
    "Provider shall keep complete and accurate records of the {metric} for at least {years} years and make them "
    "available to Client or its auditor on {days} business days' written notice.",
    "Each Party shall designate a representative responsible for the {metric}, who shall meet with the other "
    "Party's representative at least every {days} days to review performance and open issues.",
    "Provider shall not change the location, method or personnel used to deliver the {metric} without giving "
    "Client at least {days} days' prior written notice and an assessment of the change's effect.",
    "Any dispute about the {metric} shall first be escalated to the Parties' relationship managers, then to their "
    "executive sponsors, each of whom shall have {days} business days to resolve it before either Party proceeds.",
)
_METRICS = ("availability of the hosted platform", "mean time to resolve priority one incidents", "backup success rate",
            "first contact resolution rate", "accuracy of monthly invoices", "timeliness of release deliveries",
            "percentage of tickets closed within target", "completeness of the asset register")


def _clause(rng: random.Random, schedule: int, n: int) -> str:
    body = " ".join(rng.choice(_BODIES).format(metric=rng.choice(_METRICS), days=rng.randrange(3, 31),
                                               pct=rng.randrange(90, 100), credit=rng.randrange(2, 16),
                                               years=rng.randrange(3, 11))
                    for _ in range(rng.randrange(1, 4)))
    return f"{schedule}.{n} {rng.choice(_SUBJECTS)}. {body}"


FULL_CONTRACT_PAGES = 8  # the sample contract takes 6; shorter documents get a one-paragraph agreement


def _short_contract(pdf: samples._Pdf, m: samples.Matter) -> samples.Draft:
    c, o = m.client, m.other
    pdf.footer_text = f"Services Agreement - {c.short} / {o.short}  |  Page {{page}} of {{nb}}"
    pdf.add_page()
    pdf.heading("SERVICES AGREEMENT", align="C")
    pdf.para(f"This Services Agreement is entered into as of {samples.long_date(m.d_msa)} by and between {c.name} "
             f'("Client") and {o.name} ("Provider"), for fees of {samples.money(m.contract_value)}. It is governed by '
             f"the laws of the State of {m.forum.state}. Signed by {m.client_exec.full} and {m.other_exec.full}.")
    return samples.Draft("short-contract", "contract", {"document_date": m.d_msa.isoformat()})


def _long_contract(pages: int):
    def build(pdf: samples._Pdf, m: samples.Matter, rng: random.Random) -> samples.Draft:
        draft = samples.contract(pdf, m, rng) if pages >= FULL_CONTRACT_PAGES else _short_contract(pdf, m)
        schedule, n = 1, 0
        while True:
            if n == 0 or n >= 40:
                if pdf.page_no() >= pages:
                    break
                schedule, n = schedule + (n > 0), 0
                pdf.add_page()
                pdf.heading(f"SCHEDULE {schedule} - SERVICE DESCRIPTION AND SERVICE LEVELS")
            n += 1
            text = _clause(rng, schedule, n)
            if pdf.page_no() >= pages and pdf.height(text) > pdf.remaining():
                break
            pdf.para(text)
        return draft

    return build


def long_contract(pages: int, scanned_share: float = 0.05, *, seed: int = 1) -> Path:
    """A contract of exactly `pages` pages, about `scanned_share` of them scanned (spread evenly, never the
    contract's own first pages); cached."""
    name = f"contract-{pages}p-{round(scanned_share * 1000)}pm-s{seed}-v{VERSION}"
    path = CACHE / f"{name}.pdf"
    if path.is_file():
        return path
    build = _long_contract(pages)
    with warnings.catch_warnings():  # fpdf2: "{nb}" is narrower than "1000"; only a footer's centring moves
        warnings.simplefilter("ignore", UserWarning)
        text_pdf, pdf, _ = samples._render(build, MATTER, f"bench:{seed}", {})
    if pdf.pages_count != pages:
        raise ValueError(f"laid out {pdf.pages_count} pages, not {pages}")
    count = min(pages - 1, max(1, round(pages * scanned_share))) if scanned_share > 0 else 0
    step = (pages - 1) / count if count else 0
    scanned = sorted({2 + int(i * step) for i in range(count)})  # spread out, never page 1 (the parties)
    data = text_pdf
    if scanned:
        images = samples._scan_pages(text_pdf, scanned, "clean", random.Random(f"bench:{seed}:scan"))
        data = _with_images(text_pdf, images)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def _with_images(pdf: bytes, images: dict[int, bytes]) -> bytes:
    """The PDF with each page in `images` replaced by an image-only page of the same size (one layout pass,
    where the samples lay the document out twice)."""
    doc = pdfium.PdfDocument(pdf)
    try:
        for n, jpeg in sorted(images.items()):
            width, height = doc[n - 1].get_size()
            doc.del_page(n - 1)
            page = doc.new_page(width, height, index=n - 1)
            image = pdfium.PdfImage.new(doc)
            image.load_jpeg(io.BytesIO(jpeg), inline=False, autoclose=True)
            image.set_matrix(pdfium.PdfMatrix().scale(width, height))
            page.insert_obj(image)
            page.gen_content()
        out = io.BytesIO()
        doc.save(out)
        return out.getvalue()
    finally:
        doc.close()


def scanned_pages(path: Path) -> list[int]:
    """Pages without a text layer."""
    return [i + 1 for i, text in enumerate(samples.page_texts(path)) if not text.strip()]
