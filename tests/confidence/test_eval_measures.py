"""What the evaluation measures: OCR error against the true text, names compared, the calibration's penalty."""

import random

from embedded.eval.metrics import bootstrap_interval, ece
from embedded.eval.run import FEATURES, L2_GRID, Row, _norm_text, attempted, by_matter, cer, choose_l2, correct, fit

TRUE_PAGE = "ACME ROBOTICS, INC.\nBy: ______________________________\nName: Victor D. Chen\nContents ........ 4"


def test_cer_leaves_out_form_lines_and_leaders_unless_asked():
    read = "ACME ROBOTICS, INC.\nBy:\nName: Victor D. Chen\nContents 4"  # what OCR makes of the drawn rules
    assert cer(read, TRUE_PAGE) == 0.0
    assert cer(read, TRUE_PAGE, fills=True) > 0.3
    assert 0 < cer(read.replace("Chen", "Chcn"), TRUE_PAGE) < 0.05  # a misread letter still counts


def test_names_compare_without_case_spacing_or_punctuation():
    assert _norm_text("Acme Robotics Inc.") == _norm_text("ACME  Robotics, Inc") == "acme robotics inc"
    assert correct("client_name", "the Acme Robotics Inc.", "Acme Robotics, Inc.")
    assert not correct("client_name", "Acme Robotics", "Acme Robotics, Inc.")
    assert correct("signatories", ["Chen, Victor D."], ["Chen Victor D"])


def test_a_governing_law_is_its_jurisdiction_and_a_cut_value_counts_as_attempted():
    assert correct("governing_law", "Illinois", "State of Illinois")
    assert correct("governing_law", "the laws of the State of Illinois", "State of Illinois")
    assert not correct("governing_law", "State of Delaware", "State of Illinois")
    assert attempted("governing_law", ["1976-04-12", "State of"], "State of Delaware")  # the half before the break
    assert attempted("governing_law", ["the law of the state of Delaware and the"], "State of Delaware")
    assert not attempted("governing_law", ["State or Country's Law", "of", "Malti Law"], "State of Illinois")


def _rows(n_docs: int, noise: float, seed: int) -> list[Row]:
    rng = random.Random(seed)
    rows = []
    for d in range(n_docs):
        for field in ("client_name", "court"):
            good = rng.random() < 0.5
            x = [0.0] * len(FEATURES)
            x[FEATURES.index("agreement")] = (1.0 if good else 0.0) if rng.random() > noise else rng.random()
            rows.append(Row(f"d{d}", "calibration", "clean", field, x, int(good), False, False, None, None))
    return rows


def test_the_penalty_is_chosen_on_left_out_documents():
    clean, noisy = _rows(40, 0.0, 1), _rows(40, 0.6, 2)
    assert choose_l2(clean) == min(L2_GRID)  # a signal that never errs: the weakest penalty fits it best
    assert choose_l2(noisy) > min(L2_GRID)  # a noisy one: a stronger penalty generalizes better
    cal = fit(clean, "t", [])
    assert cal.fitted["l2"] == min(L2_GRID) and cal.coef["agreement"] > 5


def test_how_often_an_empty_answer_is_right_is_fitted_per_field():
    """Most documents hold no court, so an empty court is right; many state a total the models miss, so an
    empty total is often wrong. One shared `empty` weight would put both at the mean."""
    rng = random.Random(5)
    empty = [0.0] * len(FEATURES)
    empty[FEATURES.index("empty")] = 1.0
    rows = []
    for d in range(60):
        for field, right in (("court", 0.95), ("total_amount", 0.5)):
            rows.append(Row(f"d{d}", "calibration", "clean", field, list(empty), int(rng.random() < right), True,
                            False, None, None))
    cal = fit(rows, "t", [])
    court, total = (cal.confidence(f, dict(zip(FEATURES, empty))) for f in ("court", "total_amount"))
    assert court > 0.85 and 0.35 < total < 0.65
    assert cal.empty_offsets["court"] > cal.empty_offsets["total_amount"]


def test_the_ece_interval_resamples_whole_documents():
    rng = random.Random(3)
    calibrated = [[(0.8, int(rng.random() < 0.8)) for _ in range(10)] for _ in range(40)]
    lo, hi = bootstrap_interval(calibrated, ece, resamples=200)
    point = ece([c for d in calibrated for c, _ in d], [y for d in calibrated for _, y in d])
    assert lo <= point <= hi < 0.15
    # one document whose ten fields are all wrong at 0.8: resampling documents sees it come and go
    skewed = calibrated[:9] + [[(0.8, 0)] * 10]
    lo, hi = bootstrap_interval(skewed, ece, resamples=200)
    assert hi - lo > 0.1
    assert bootstrap_interval([[(0.5, 1)]], ece, resamples=20) == (0.5, 0.5)


def test_each_matter_is_scored_by_a_calibration_fitted_without_it():
    rows = _rows(60, 0.3, 4)
    for i, r in enumerate(rows):
        r.doc_id = f"EVAL-{i // 40}/{r.doc_id}"  # three matters of 20 documents
    report = by_matter(rows, "t", [], None)
    assert report["matters"] == 3 and report["fields"] == len(rows)
    assert report["auroc"] > 0.8 and report["ece"] < 0.1
    # a field only one matter has, always right without any signal: a fit that saw the matter would learn that
    unseen = [Row(r.doc_id, r.part, r.set, "case_number", [0.0] * len(FEATURES), 1, False, False, None, None)
              if r.doc_id.startswith("EVAL-2") else r for r in rows]
    assert by_matter(unseen, "t", [], None)["ece"] > 0.2
    assert by_matter([r for r in rows if not r.doc_id.startswith("EVAL-2")], "t", [], None) is None  # two matters
