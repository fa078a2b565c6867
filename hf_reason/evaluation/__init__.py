"""Evaluation: metrics, statistics, validators and the sandbox for untrusted code."""

from .reports import ReportEvaluator, ReportScoreReward, parse_report
from .sandbox import SandboxConfig, SandboxResult, run_in_sandbox
from .statistics import (
    benjamini_hochberg,
    cohens_h,
    format_proportion,
    mcnemar_exact,
    mcnemar_from_outcomes,
    wilson_interval,
)
from .validators import ValidationResult, validate
