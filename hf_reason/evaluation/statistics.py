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
