"""Small, exact statistics used to report results honestly (intervals, not bare means)."""

import math


def wilson_interval(successes: int, total: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% by default).

    Unlike the normal approximation it stays inside [0, 1] and is sensible at 0 or n successes.
    """
    if total < 0 or successes < 0 or successes > total:
        raise ValueError(f"need 0 <= successes <= total, got successes={successes}, total={total}")
    if total == 0:
        return 0.0, 1.0
    p = successes / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def format_proportion(successes: int, total: int) -> str:
    """'43.8% [38.1, 49.6] (n=300)': the estimate with its Wilson 95% interval."""
    low, high = wilson_interval(successes, total)
    estimate = successes / total if total else float("nan")
    return f"{100 * estimate:.1f}% [{100 * low:.1f}, {100 * high:.1f}] (n={total})"


def mcnemar_exact(b: int, c: int) -> float:
    """Exact two-sided McNemar test for paired binary outcomes; returns the p-value.

    `b` counts pairs where only system A is right, `c` pairs where only system B is right (the
    discordant pairs; concordant pairs carry no information). Under the null hypothesis each
    discordant pair goes either way with probability 1/2, so the p-value is the two-sided binomial
    tail ``min(1, 2 * P[X <= min(b, c)])`` with ``X ~ Binomial(b + c, 1/2)``. The exact form is used
    because the chi-square approximation is poor at the small discordant counts of held-out sets.
    """
    if not isinstance(b, int) or not isinstance(c, int) or b < 0 or c < 0:
        raise ValueError(f"b and c must be non-negative integers (discordant pair counts), got b={b!r}, c={c!r}")
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    # integer arithmetic keeps the tail exact for any n (no float underflow of 0.5**n terms)
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, 2 * tail / 2**n)


def mcnemar_from_outcomes(correct_a, correct_b) -> tuple[int, int, float]:
    """(b, c, p) of the exact McNemar test from two equally long sequences of per-item booleans."""
    correct_a, correct_b = list(correct_a), list(correct_b)
    if len(correct_a) != len(correct_b):
        raise ValueError(
            f"correct_a and correct_b must pair up item by item, got {len(correct_a)} and {len(correct_b)}"
        )
    b = sum(1 for x, y in zip(correct_a, correct_b) if x and not y)
    c = sum(1 for x, y in zip(correct_a, correct_b) if y and not x)
    return b, c, mcnemar_exact(b, c)


def benjamini_hochberg(p_values, alpha: float = 0.05) -> tuple[list[float], list[bool]]:
    """Benjamini-Hochberg false-discovery-rate control over a family of tests.

    Returns ``(adjusted, rejected)`` in the input order: the BH-adjusted p-values
    (``min_{j >= i} m * p_(j) / j`` over the sorted p-values, capped at 1) and whether each
    hypothesis is rejected at FDR level `alpha` (``adjusted <= alpha``).
    """
    p = [float(x) for x in p_values]
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if any(not 0 <= x <= 1 for x in p):
        raise ValueError(f"p_values must all lie in [0, 1], got {p}")
    m = len(p)
    if m == 0:
        return [], []
    order = sorted(range(m), key=lambda i: p[i])
    adjusted = [0.0] * m
    running_min = 1.0
    for rank in range(m, 0, -1):  # from the largest p-value down: the step-up procedure
        i = order[rank - 1]
        running_min = min(running_min, p[i] * m / rank)
        adjusted[i] = running_min
    return adjusted, [a <= alpha for a in adjusted]


def cohens_h(p1: float, p2: float) -> float:
    """Cohen's h effect size between two proportions: ``2 asin(sqrt(p1)) - 2 asin(sqrt(p2))``.

    Conventional reading: |h| ~ 0.2 small, 0.5 medium, 0.8 large.
    """
    for name, value in (("p1", p1), ("p2", p2)):
        if not 0 <= value <= 1:
            raise ValueError(f"{name} must be a proportion in [0, 1], got {value}")
    return 2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p2))


def paired_sign_flip_p(differences, samples: int = 10000, seed: int = 0) -> float:
    """Two-sided p-value of a paired sign-flip permutation test that the mean difference is zero.

    Args:
        differences: per-item differences (system A minus system B) of a continuous score.
        samples: random sign assignments drawn (the p-value is ``(1 + hits) / (samples + 1)``, never 0).
        seed: seed of the sign draws, so that a report is reproducible.

    Under the null hypothesis each difference is as likely positive as negative; no distribution is
    assumed (scores in [0, 1] with many ties are far from normal, so a t-test would be off).
    """
    import numpy as np

    if not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be an int >= 1 (random sign assignments), got {samples!r}")
    differences = np.asarray(list(differences), dtype=float)
    if differences.ndim != 1 or not np.all(np.isfinite(differences)):
        raise ValueError("differences must be a flat sequence of finite numbers")
    if len(differences) == 0 or not np.any(differences):
        return 1.0
    signs = np.random.default_rng(seed).choice((-1.0, 1.0), size=(samples, len(differences)))
    null = np.abs((signs * differences).mean(axis=1))
    # the tolerance keeps a null mean equal to the observed one (up to rounding) counted as a hit
    hits = int(np.sum(null >= abs(differences.mean()) - 1e-12))
    return (1 + hits) / (samples + 1)


def auroc(scores, labels) -> float:
    """Area under the ROC curve of `scores` for the binary `labels`: the probability that a positive
    scores above a negative (ties count one half), from the Mann-Whitney rank sum.

    Args:
        scores: one finite number per item (higher = more likely positive).
        labels: one bool per item.

    0.5 is chance; below 0.5 the score ranks negatives higher. NaN when either class is empty.
    """
    import numpy as np
    from scipy.stats import rankdata

    scores = np.asarray(list(scores), dtype=float)
    labels = np.asarray(list(labels))
    if scores.ndim != 1 or scores.shape != labels.shape:
        raise ValueError(f"scores and labels must be flat and of equal length, got {scores.shape} and {labels.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite numbers")
    if labels.dtype != bool:
        if not np.isin(labels, (0, 1)).all():
            raise ValueError("labels must be booleans (or 0 / 1)")
        labels = labels.astype(bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(scores)  # average ranks: a tie between classes counts one half
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))
