"""Evaluation: metrics, statistics, validators and the sandbox for untrusted code."""

from .exact_arithmetic import ArithmeticExpressionError, ExactExpression, evaluate_exact, parse_exact
from .instruction_comparison import compare_instruction_following
from .instruction_following import (
    INSTRUCTION_CHECKERS,
    InstructionFollowingResult,
    check_instruction,
    evaluate_instruction_following,
)
from .reports import ReportEvaluator, ReportScoreReward, parse_report
from .sandbox import SandboxConfig, SandboxResult, run_in_sandbox
from .sentinel import ChatTemplateContaminationError, run_sentinel_check
from .statistics import (
    benjamini_hochberg,
    cohens_h,
    format_proportion,
    mcnemar_exact,
    mcnemar_from_outcomes,
    wilson_interval,
)
from .validators import ValidationResult, validate


__all__ = [
    "INSTRUCTION_CHECKERS",
    "InstructionFollowingResult",
    "check_instruction",
    "compare_instruction_following",
    "evaluate_instruction_following",
    "ChatTemplateContaminationError",
    "run_sentinel_check",
    "ArithmeticExpressionError",
    "ExactExpression",
    "ReportEvaluator",
    "ReportScoreReward",
    "SandboxConfig",
    "SandboxResult",
    "ValidationResult",
    "benjamini_hochberg",
    "cohens_h",
    "evaluate_exact",
    "format_proportion",
    "mcnemar_exact",
    "mcnemar_from_outcomes",
    "parse_exact",
    "metric_path",
    "parse_report",
    "run_in_sandbox",
    "validate",
    "wilson_interval",
]

_METRICS_DIR = __import__("pathlib").Path(__file__).parent / "metrics"


def metric_path(name: str) -> str:
    """Local path of one of hf-reason's `evaluate` metric modules, for `evaluate.load(metric_path(name))`.

    `evaluate.load("<name>")` fetches metric scripts from the Hub; these ship in the package and load
    offline. Available: ``"puzzle_accuracy"`` (cell / exact accuracy with a Wilson interval).
    """
    available = sorted(p.name for p in _METRICS_DIR.iterdir() if (p / f"{p.name}.py").is_file())
    if name not in available:
        raise ValueError(f"metric_path: unknown metric {name!r}; available: {available}")
    return str(_METRICS_DIR / name)
