"""The evaluation corpus: sample matters (embedded.samples) in several conditions, each document with its truth.

Per matter (one seed), documents in these sets:
- clean:    every page digital (text layer);
- scanned:  the samples' own scan plans (a contract's last page, a notice's last page noisy, a reply all scanned);
- noisy:    every page (but those a split value runs over) scanned at the noisy level: blur, rotation,
            low contrast (grey paper, noise), JPEG, downsampling;
- conflict: a clean document with an extra page that states a different matter number / amount / date;
- twin:     the invoice without its injected instructions (to see what the injection changed).
Values split over page breaks come with the engagement letter and the contract (governing law); the invoice
carries the injected instructions. Matters are split into a calibration part and a held-out part by seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from embedded.samples import (
    BUILDERS, Builder, Draft, SampleDoc, SampleTruth, _Pdf, generate_doc, make_matter, money,
)

SETS = ("clean", "scanned", "noisy", "conflict", "twin")


@dataclass(frozen=True)
class EvalDoc:
    doc_id: str
    matter_seed: int
    part: str  # "calibration" | "heldout"
    set: str  # one of SETS
    sample: SampleDoc

    @property
    def truth(self) -> SampleTruth:
        return self.sample.truth

    def page_condition(self, page: int) -> str:
        """digital | scanned | noisy: how the page a value sits on was made."""
        if page not in self.truth.scanned_pages:
            return "digital"
        return "noisy" if self.truth.scan_level == "noisy" else "scanned"


def _scan_all(builder: Builder) -> Builder:
    def build(pdf: _Pdf, m: Any, rng: random.Random, **kw: Any) -> Draft:
        return replace(builder(pdf, m, rng, **kw), scan="all")
    build.__name__ = builder.__name__
    return build


def _no_scan(builder: Builder) -> Builder:
    def build(pdf: _Pdf, m: Any, rng: random.Random, **kw: Any) -> Draft:
        return replace(builder(pdf, m, rng, **kw), scan="none")
    build.__name__ = builder.__name__
    return build


def _with_conflict(builder: Builder) -> Builder:
    """The document plus a closing page that states other values for the matter number, amount and date."""
    def build(pdf: _Pdf, m: Any, rng: random.Random, **kw: Any) -> Draft:
        draft = builder(pdf, m, rng, **kw)
        other_matter = f"{m.matter_id[:-4]}{(int(m.matter_id[-4:]) + 4111) % 10000:04d}" \
            if m.matter_id[-4:].isdigit() else m.matter_id + "-B"
        pdf.add_page()
        pdf.heading("SCHEDULE 1 - BILLING INSTRUCTIONS")
        pdf.para(f"Matter No.: {other_matter}. All invoices under this schedule shall quote Matter No. "
                 f"{other_matter} and shall be addressed to the accounts payable department.")
        pdf.para(f"Total amount due under this schedule: {money(round(m.retainer * 3.7 + 125.5, 2))}.")
        return replace(draft, scan="none")
    build.__name__ = builder.__name__
    return build


def matter_docs(out: Path, matter_id: str, seed: int, part: str, sets: tuple[str, ...] = SETS) -> list[EvalDoc]:
    m = make_matter(matter_id, seed)
    docs: list[EvalDoc] = []

    def add(set_name: str, builder: Builder, i: int, **kw: Any) -> None:
        sample = generate_doc(builder, m, out / matter_id / set_name, seed=f"{matter_id}:{seed}:{i}",
                              suffix=f"-{set_name}", **kw)
        docs.append(EvalDoc(f"{sample.name}"[:64], seed, part, set_name, sample))

    for i, builder in enumerate(BUILDERS):
        kw = {"injection": True} if builder.__name__ == "invoice" else {}
        if "clean" in sets:
            add("clean", _no_scan(builder), i, **kw)
        if "scanned" in sets and builder.__name__ in ("contract", "notice_letter", "reply_letter"):
            add("scanned", builder, i, **kw)
        if "noisy" in sets:
            add("noisy", _scan_all(builder), i, scan_level="noisy", **kw)
        if "conflict" in sets and builder.__name__ in ("engagement_letter", "invoice"):
            add("conflict", _with_conflict(builder), i, **({"injection": False} if kw else {}))
        if "twin" in sets and builder.__name__ == "invoice":
            add("twin", _no_scan(builder), i, injection=False)
    return docs


def build_corpus(out: Path, matters: int, *, sets: tuple[str, ...] = SETS, first_seed: int = 11) -> list[EvalDoc]:
    """`matters` matters; the first half (rounded up) calibrates, the rest is held out."""
    docs: list[EvalDoc] = []
    calibration = (matters + 1) // 2
    for n in range(matters):
        seed = first_seed + n
        docs += matter_docs(out, f"EVAL-{seed:04d}", seed, "calibration" if n < calibration else "heldout", sets)
    return docs
