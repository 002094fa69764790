"""Calibrated field confidence: a logistic model over a field's signals, fitted per LLM pool.

P(value right) = sigmoid(intercept + sum(coef[f] * x[f]) + offset), with x the signals of
`f.extraction.score.Signals` (logprob split into its value and whether the backends gave one), and the offset
the field's own: `field_offsets[name]` for a value, `empty_offsets[name]` for an empty answer (how often a
field is rightly empty depends on the field: most documents hold no court, many state a total the models miss).

The fitted coefficients live in `f.extraction.calibration_v1` (a Python module, so that it ships with the
Windmill scripts; `scripts/eval --write-calibration` writes it). Each profile there names the backends it was
fitted on; a record is scored with the profile whose backends cover the backends that answered it, else the
default profile. `threshold` is the confidence at which the evaluation reached the target precision: a
required field under it sends the document to review.
"""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

FEATURES: tuple[str, ...] = ("agreement", "margin", "backends", "grounding", "value_found", "exact", "ocr",
                             "logprob", "has_logprob", "valid", "empty", "expected_missing", "quality")
_EMPTY = FEATURES.index("empty")


class HasSignals(Protocol):
    def as_dict(self) -> dict[str, float | None]: ...


def features(signals: HasSignals | Mapping[str, Any]) -> list[float]:
    s = dict(signals) if isinstance(signals, Mapping) else signals.as_dict()
    logprob = s.get("logprob")
    row = {**s, "logprob": float(logprob) if logprob is not None else 0.0,
           "has_logprob": 0.0 if logprob is None else 1.0}
    return [float(row.get(name) or 0.0) for name in FEATURES]


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@dataclass(frozen=True)
class Calibration:
    name: str
    intercept: float
    coef: dict[str, float]
    field_offsets: dict[str, float] = field(default_factory=dict)
    accept_threshold: float = 0.7
    backends: tuple[str, ...] = ()
    fitted: dict[str, Any] = field(default_factory=dict)  # provenance: corpus, rows, date, metrics
    empty_offsets: dict[str, float] = field(default_factory=dict)

    def logit(self, name: str, signals: HasSignals | Mapping[str, Any]) -> float:
        x = features(signals)
        offsets = self.empty_offsets if x[_EMPTY] else self.field_offsets
        return self.intercept + offsets.get(name, 0.0) + sum(self.coef.get(f, 0.0) * v for f, v in zip(FEATURES, x))

    def confidence(self, name: str, signals: HasSignals | Mapping[str, Any]) -> float:
        return sigmoid(self.logit(name, signals))

    def threshold(self, name: str) -> float:
        return self.accept_threshold

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "intercept": self.intercept, "coef": self.coef,
                "field_offsets": self.field_offsets, "empty_offsets": self.empty_offsets,
                "accept_threshold": self.accept_threshold,
                "backends": list(self.backends), "fitted": self.fitted}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Calibration":
        return cls(name=data["name"], intercept=float(data["intercept"]), coef=dict(data["coef"]),
                   field_offsets=dict(data.get("field_offsets") or {}),
                   empty_offsets=dict(data.get("empty_offsets") or {}),
                   accept_threshold=float(data.get("accept_threshold", 0.7)),
                   backends=tuple(data.get("backends") or ()), fitted=dict(data.get("fitted") or {}))


# Before any fit: roughly the first hand-made rule (agreement x grounding x OCR), as a logistic model.
UNFITTED = Calibration(
    name="unfitted", intercept=-6.0,
    coef={"agreement": 4.0, "margin": 1.0, "backends": 0.5, "grounding": 2.0, "value_found": 1.5, "exact": 0.5, "ocr": 2.0,
          "logprob": 0.0, "has_logprob": 0.0, "valid": 1.0, "empty": 7.0, "expected_missing": -4.0, "quality": 1.0},
    accept_threshold=0.7)


def profiles() -> list[Calibration]:
    try:
        from f.extraction.calibration_v1 import CALIBRATION
    except ImportError:
        return []
    return [Calibration.from_dict(p) for p in CALIBRATION["profiles"]]


def default_profile() -> Calibration:
    try:
        from f.extraction.calibration_v1 import CALIBRATION
    except ImportError:
        return UNFITTED
    wanted = CALIBRATION.get("default")
    return next((p for p in profiles() if p.name == wanted), UNFITTED)


def calibration_for(backends: Iterable[str], name: str | None = None) -> Calibration:
    """The profile named `name`, else the one fitted on backends that cover `backends`, else the default."""
    found = profiles()
    if name:
        for p in found:
            if p.name == name:
                return p
    wanted = {b for b in backends if b and b != "?"}
    if wanted:
        for p in found:
            if wanted <= set(p.backends):
                return p
    return default_profile()
