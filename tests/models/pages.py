"""Realistic one-page legal texts with known field values, for the local-model test and scripts/measure-models."""

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from f.core.models import Chunk
from f.extraction.chunking import content_hash
from f.extraction.compact import IsoDate, Text


@dataclass(frozen=True)
class Page:
    name: str
    text: str
    truth: dict[str, Any]

    def chunk(self, page: int = 1) -> Chunk:
        body = {page: self.text}
        return Chunk(chunk_id=f"c{page:05d}", pages=[page], text_by_page=body, content_hash=content_hash(body))


ENGAGEMENT_LETTER = Page("engagement_letter", """\
HARTWELL & PIKE LLP
1180 Avenue of the Americas, 22nd Floor, New York, New York 10036 | (212) 555-0148

March 4, 2025

PRIVILEGED AND CONFIDENTIAL

Ms. Laura Whitcombe
General Counsel
Acme Robotics, Inc.
455 Harbor Point Drive
Boston, Massachusetts 02210

Re: Engagement Letter - Acme Robotics, Inc. / Borealis Logistics LLC dispute
Matter No. HP-2025-0147

Dear Ms. Whitcombe:

Thank you for selecting Hartwell & Pike LLP to represent Acme Robotics, Inc. (the "Client") in
connection with its dispute with Borealis Logistics LLC arising under the Master Services Agreement
dated June 1, 2023. This letter sets out the scope and terms of our engagement.

Scope. We will advise the Client on its rights under the agreement, prepare a notice of breach, and,
if the Client so instructs, commence litigation. Any other work will require a separate engagement.

Fees. Our fees will be based on the time spent at our standard hourly rates, which currently range
from $450 to $1,150 per hour. We ask for a retainer of $25,000.00, to be held in our client trust
account and applied to our final invoice.

Governing law. This engagement letter is governed by the laws of the State of New York.

If these terms are acceptable, please sign and return a copy of this letter.

Very truly yours,

HARTWELL & PIKE LLP

By: Daniel Chen, Partner

AGREED AND ACCEPTED: Acme Robotics, Inc.

By: Laura Whitcombe, General Counsel
""", {
    "document_type": "engagement_letter", "matter_number": "HP-2025-0147", "client_name": "Acme Robotics, Inc.",
    "counterparty": "Borealis Logistics LLC", "document_date": "2025-03-04", "total_amount": None, "court": None,
    "case_number": None, "governing_law": "New York", "signatories": ["Daniel Chen", "Laura Whitcombe"],
})

INVOICE = Page("invoice", """\
HARTWELL & PIKE LLP
1180 Avenue of the Americas, 22nd Floor
New York, New York 10036

INVOICE

Invoice No.: 2025-06-0311
Invoice Date: June 30, 2025
Matter No.: HP-2025-0147
Matter: Acme Robotics, Inc. / Borealis Logistics LLC

Bill To:
Acme Robotics, Inc.
Attn: Laura Whitcombe, General Counsel
455 Harbor Point Drive
Boston, Massachusetts 02210

Professional services rendered through June 30, 2025

Date        Timekeeper       Hours   Description                                   Amount
06/02/2025  D. Chen           3.20   Review Borealis reply to notice of breach   $3,680.00
06/09/2025  R. Okafor         6.50   Research damages under MSA section 9          $4,225.00
06/17/2025  D. Chen           4.00   Draft complaint; client call                  $4,600.00
06/24/2025  R. Okafor         5.10   Revise complaint and exhibits                 $3,315.00

Total fees                                                                        $15,820.00
Disbursements (court filing fee, courier)                                            $455.00
Less retainer applied                                                             ($5,000.00)

TOTAL AMOUNT DUE (USD)                                                            $11,275.00

Payment is due within 30 days. Please reference Matter No. HP-2025-0147 with your payment.
""", {
    "document_type": "invoice", "matter_number": "HP-2025-0147", "client_name": "Acme Robotics, Inc.",
    "document_date": "2025-06-30", "total_amount": {"value": 11275.0, "currency": "USD"}, "court": None,
    "case_number": None, "governing_law": None, "signatories": None,
})

COMPLAINT = Page("complaint", """\
UNITED STATES DISTRICT COURT
SOUTHERN DISTRICT OF NEW YORK

ACME ROBOTICS, INC.,
                    Plaintiff,
        v.                                        Case No. 1:25-cv-04821
BOREALIS LOGISTICS LLC,
                    Defendant.

COMPLAINT FOR BREACH OF CONTRACT

Plaintiff Acme Robotics, Inc. ("Acme"), by its attorneys Hartwell & Pike LLP, for its complaint
against Defendant Borealis Logistics LLC ("Borealis"), alleges as follows:

1. This is an action for breach of the Master Services Agreement dated June 1, 2023 (the "MSA"),
under which Borealis agreed to provide warehousing and order fulfillment services to Acme.

2. Borealis failed to meet the service levels required by the MSA for six consecutive months and
refused to pay the service credits due, which total $412,500.00.

3. This Court has jurisdiction under 28 U.S.C. section 1332. The MSA is governed by the laws of the
State of New York.

Dated: New York, New York
       July 14, 2025

HARTWELL & PIKE LLP
By: /s/ Daniel Chen
Daniel Chen
Attorneys for Plaintiff Acme Robotics, Inc.
Matter No. HP-2025-0147
""", {
    "document_type": "court_filing", "matter_number": "HP-2025-0147", "client_name": "Acme Robotics, Inc.",
    "counterparty": "Borealis Logistics LLC", "document_date": "2025-07-14",
    "court": "United States District Court for the Southern District of New York", "case_number": "1:25-cv-04821",
    "governing_law": "New York", "signatories": ["Daniel Chen"],
})

PAGES: tuple[Page, ...] = (ENGAGEMENT_LETTER, INVOICE, COMPLAINT)


def _norm(s: Any) -> str:
    return " ".join("".join(c for c in str(s).casefold() if c.isalnum() or c.isspace()).split())


def field_correct(name: str, got: Any, want: Any) -> bool:
    """Lenient comparison: case and punctuation do not matter; names and courts may be the core
    words ("Acme Robotics" for "Acme Robotics, Inc.", "New York" for "State of New York")."""
    if want is None:
        return got in (None, "", [])
    if got in (None, "", []):
        return False
    if name == "total_amount":
        return (isinstance(got, dict) and abs(float(got.get("value") or 0) - want["value"]) < 0.01
                and str(got.get("currency", "")).upper() == want["currency"])
    if name == "signatories":
        names = {_norm(g) for g in got} if isinstance(got, list) else set()
        return all(any(_norm(w) in n for n in names) for w in want)
    if name in ("document_type", "document_date", "matter_number", "case_number"):
        return _norm(got) == _norm(want)
    g, w = _norm(got), _norm(want)
    core = w.removesuffix(" inc").removesuffix(" llc").removesuffix(" llp")
    return bool(g) and (g == w or core in g or (len(g) > 5 and g in w))


class FewFields(BaseModel):
    """Three fields only: the smallest per-call schema, where both small models get the client right."""

    model_config = ConfigDict(extra="forbid")
    client_name: Text | None
    matter_number: Text | None
    document_date: IsoDate | None
