"""Small, dependency-free statistics for the evaluation: logistic fit, ECE, AUROC, Spearman, thresholds."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence


def fit_logistic(x: Sequence[Sequence[float]], y: Sequence[int], *, l2: float = 1.0,
                 iterations: int = 50) -> tuple[float, list[float]]:
    """Intercept and coefficients of an L2-regularized logistic regression (Newton-Raphson; the intercept is
    not penalized). Pure Python: a few features, a few thousand rows."""
    n, d = len(x), len(x[0]) if x else 0
    w = [0.0] * (d + 1)  # w[0] intercept
    rows = [[1.0, *r] for r in x]
    for _ in range(iterations):
        grad = [0.0] * (d + 1)
        hess = [[0.0] * (d + 1) for _ in range(d + 1)]
        for r, t in zip(rows, y):
            z = sum(wi * ri for wi, ri in zip(w, r))
            p = 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))
            g, h = p - t, max(p * (1 - p), 1e-9)
            for i in range(d + 1):
                grad[i] += g * r[i]
                hi = h * r[i]
                if hi:
                    row = hess[i]
                    for j in range(i, d + 1):
                        row[j] += hi * r[j]
        for i in range(1, d + 1):
            grad[i] += l2 * w[i]
            hess[i][i] += l2
        for i in range(d + 1):
            for j in range(i):
                hess[i][j] = hess[j][i]
        step = _solve(hess, grad)
        w = [wi - si for wi, si in zip(w, step)]
        if max(abs(s) for s in step) < 1e-7:
            break
    return w[0], w[1:]


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (a is small and positive definite)."""
    n = len(b)
    m = [row[:] + [bi] for row, bi in zip(a, b)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(m[r][c]))
        m[c], m[p] = m[p], m[c]
        pivot = m[c][c] or 1e-12
        for r in range(c + 1, n):
            f = m[r][c] / pivot
            if f:
                for k in range(c, n + 1):
                    m[r][k] -= f * m[c][k]
    out = [0.0] * n
    for r in range(n - 1, -1, -1):
        out[r] = (m[r][n] - sum(m[r][k] * out[k] for k in range(r + 1, n))) / (m[r][r] or 1e-12)
    return out


def ece(confidence: Sequence[float], correct: Sequence[int], bins: int = 10) -> float:
    """Expected calibration error over equal-width bins: sum over bins of |accuracy - mean confidence| x share."""
    n = len(confidence)
    if not n:
        return float("nan")
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        idx = [i for i, c in enumerate(confidence) if lo <= c < hi or (b == bins - 1 and c == 1.0)]
        if idx:
            acc = sum(correct[i] for i in idx) / len(idx)
            conf = sum(confidence[i] for i in idx) / len(idx)
            total += abs(acc - conf) * len(idx) / n
    return total


def bootstrap_interval(groups: Sequence[Sequence[tuple[float, int]]],
                       statistic: Callable[[Sequence[float], Sequence[int]], float],
                       resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of a statistic of (confidence, correct) pairs, resampling whole groups (the
    documents: the fields of one document are not independent draws)."""
    rng, values = random.Random(seed), []
    for _ in range(resamples):
        pairs = [p for _ in groups for p in rng.choice(groups)]
        if pairs:
            values.append(statistic([c for c, _ in pairs], [y for _, y in pairs]))
    values = sorted(v for v in values if not math.isnan(v))
    if not values:
        return float("nan"), float("nan")
    return values[int(0.025 * (len(values) - 1))], values[int(0.975 * (len(values) - 1))]


def auroc(score: Sequence[float], label: Sequence[int]) -> float:
    """Area under the ROC curve: the chance a right field outscores a wrong one (ties count half)."""
    pos = [s for s, y in zip(score, label) if y]
    neg = [s for s, y in zip(score, label) if not y]
    if not pos or not neg:
        return float("nan")
    ranks = _ranks(list(score))
    r_pos = sum(r for r, y in zip(ranks, label) if y)
    return (r_pos - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    if len(a) < 3:
        return float("nan")
    ra, rb = _ranks(list(a)), _ranks(list(b))
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va = math.sqrt(sum((x - ma) ** 2 for x in ra))
    vb = math.sqrt(sum((y - mb) ** 2 for y in rb))
    return cov / (va * vb) if va and vb else float("nan")


def wilson_lower(right: int, n: int, z: float = 1.0) -> float:
    """Lower end of the Wilson score interval of a proportion (z=1: about 84% one-sided)."""
    if n == 0:
        return 0.0
    p = right / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


def threshold_for_precision(confidence: Sequence[float], correct: Sequence[int], target: float = 0.95,
                            min_accepted: int = 5, z: float = 1.0, floor: float = 0.05) -> float:
    """The lowest confidence threshold at which the fields at or above it are right at least `target` of the
    time with some margin: the lower end of the Wilson interval of their precision (z), and their mean
    confidence, both reach it. 1.0 (accept nothing automatically) when no threshold does. The margin is what
    keeps the precision on data the threshold was not chosen on; so does the floor: no field is accepted whose
    own calibrated confidence is under target - floor, however easy the calibration part was."""
    pairs = sorted(zip(confidence, correct), key=lambda p: -p[0])
    best = 1.0
    right, conf_sum = 0, 0.0
    for i, (c, y) in enumerate(pairs, 1):
        right += y
        conf_sum += c
        last_of_tie = i == len(pairs) or pairs[i][0] != c
        if (last_of_tie and i >= min_accepted and c >= target - floor and wilson_lower(right, i, z) >= target
                and conf_sum / i >= target):
            best = c
    return best


def precision_coverage(confidence: Sequence[float], correct: Sequence[int], threshold: float) -> tuple[float, float, int]:
    accepted = [y for c, y in zip(confidence, correct) if c >= threshold]
    precision = sum(accepted) / len(accepted) if accepted else float("nan")
    coverage = len(accepted) / len(confidence) if confidence else float("nan")
    return precision, coverage, len(accepted)
