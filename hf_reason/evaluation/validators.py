"""Validators: does a report's final answer (or its code) solve the task? Fail-fast, exact.

A validator is data, ``{"kind": KIND, "config": {...}}``, stored with each curated task. The
kinds and their configuration (see docs/curated_dataset.md):

- ``exact_answer``: ``answer`` (str), ``aliases`` (list of str, optional), ``case_sensitive``
  (bool, default False). The final answer, whitespace-normalised, equals one of them.
- ``numeric``: ``answer`` (number), ``rel_tol`` / ``abs_tol`` (defaults 1e-6 / 1e-9).
- ``multiple_choice``: ``choices`` ({letter: text}), ``answer`` (a letter). The final answer is
  that letter (``B``, ``(B)``, ``B)``) or exactly its choice text.
- ``tom_answer``: ``answer`` (a location), ``distractors`` (the other locations), ``order``
  (0 = reality, 1 = first-order, 2 = second-order belief). The answer names the location and
  none of the distractors.
- ``story_consistency``: ``answer`` (+ ``aliases``), ``required_facts`` (phrases the report
  must state), ``contradictions`` (phrases it must not state).
- ``python_tests``: ``tests`` (Python source of ``assert`` statements, one per line),
  ``entry_point`` (the function the code must define), ``timeout`` (seconds, default 5). The
  report's fenced ```` ```python ```` blocks are run with the tests in the sandbox, never in this
  process. A pass needs the harness's own last line, a per-run random nonce and the number of
  asserts that held, equal to the number of tests: what the code prints or an early exit with
  status 0 never passes.
- ``plan_check``: ``puzzle`` (a `hf_reason.data.planning` puzzle), ``require_optimal`` (bool,
  default False). The answer's moves / order are simulated by the planning checker.

Fail-fast: the checks run cheapest first (is there an answer at all?) and stop at the first
that fails; the sandbox only starts once the report has code and an entry point.
"""

from __future__ import annotations

import dataclasses
import math
import re
import secrets
from collections.abc import Callable
from typing import Any, Optional

from .sandbox import SandboxConfig, run_in_sandbox


__all__ = [
    "VALIDATOR_KINDS",
    "ValidationResult",
    "check_validator_spec",
    "extract_code",
    "extract_final_answer",
    "validate",
]

_ANSWER_RE = re.compile(r"^\s*Answer:[ \t]*(.*?)\s*$", re.MULTILINE)
_CODE_RE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)
_NUMBER_RE = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:[eE][-+]?\d+)?")


@dataclasses.dataclass
class ValidationResult:
    """Outcome of one validator: `passed`, and `reason` (why it failed, or "" when it passed)."""

    passed: bool
    reason: str = ""
    details: dict = dataclasses.field(default_factory=dict)


def extract_final_answer(report: str) -> Optional[str]:
    """The text after the last ``Answer:`` line, or None when the report has none."""
    matches = _ANSWER_RE.findall(report)
    if not matches or not matches[-1].strip():
        return None
    return matches[-1].strip()


def extract_code(report: str) -> str:
    """The report's fenced Python blocks, joined (empty when there are none)."""
    return "\n\n".join(block.strip("\n") for block in _CODE_RE.findall(report))


def _norm(text: str, case_sensitive: bool = False) -> str:
    text = re.sub(r"\s+", " ", text.strip().strip(".").strip())
    text = text.strip("\"'`")
    return text if case_sensitive else text.lower()


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def _require_answer(report: str) -> tuple[Optional[str], Optional[ValidationResult]]:
    answer = extract_final_answer(report)
    if answer is None:
        return None, ValidationResult(False, "no final `Answer:` line")
    return answer, None


def _exact(report: str, config: dict, sandbox: Optional[SandboxConfig]) -> ValidationResult:
    answer, failure = _require_answer(report)
    if failure:
        return failure
    cs = bool(config.get("case_sensitive", False))
    accepted = {_norm(a, cs) for a in [config["answer"], *config.get("aliases", [])]}
    if _norm(answer, cs) in accepted:
        return ValidationResult(True)
    return ValidationResult(False, f"answer {answer!r} is not {config['answer']!r}")


def _numeric(report: str, config: dict, sandbox: Optional[SandboxConfig]) -> ValidationResult:
    answer, failure = _require_answer(report)
    if failure:
        return failure
    numbers = _NUMBER_RE.findall(answer)
    if not numbers:
        return ValidationResult(False, f"answer {answer!r} holds no number")
    value = float(numbers[-1].replace(",", ""))
    expected = float(config["answer"])
    if math.isclose(
        value, expected, rel_tol=float(config.get("rel_tol", 1e-6)), abs_tol=float(config.get("abs_tol", 1e-9))
    ):
        return ValidationResult(True, details={"value": value})
    return ValidationResult(False, f"answer {value:g} != {expected:g}", {"value": value})


def _multiple_choice(report: str, config: dict, sandbox: Optional[SandboxConfig]) -> ValidationResult:
    answer, failure = _require_answer(report)
    if failure:
        return failure
    letter = config["answer"].upper()
    match = re.fullmatch(r"\(?([A-Za-z])\)?[.):]?(?:\s+.*)?", answer.strip())
    chosen = match.group(1).upper() if match and match.group(1).upper() in config["choices"] else None
    if chosen is None:
        by_text = [k for k, v in config["choices"].items() if _norm(v) == _norm(answer)]
        chosen = by_text[0].upper() if by_text else None
    if chosen == letter:
        return ValidationResult(True)
    return ValidationResult(False, f"chose {chosen or answer!r}, expected {letter}")


def _tom(report: str, config: dict, sandbox: Optional[SandboxConfig]) -> ValidationResult:
    answer, failure = _require_answer(report)
    if failure:
        return failure
    words = _words(answer)
    if not _words(config["answer"]) <= words:
        return ValidationResult(False, f"answer {answer!r} does not name {config['answer']!r}")
    named = [d for d in config.get("distractors", []) if _words(d) <= words]
    if named:
        return ValidationResult(False, f"answer also names {named} (hedging between locations)")
    return ValidationResult(True)


def _story(report: str, config: dict, sandbox: Optional[SandboxConfig]) -> ValidationResult:
    answer, failure = _require_answer(report)
    if failure:
        return failure
    accepted = {_norm(a) for a in [config["answer"], *config.get("aliases", [])]}
    if _norm(answer) not in accepted:
        return ValidationResult(False, f"answer {answer!r} is not {config['answer']!r}")
    text = _norm(report)
    for fact in config.get("required_facts", []):
        if _norm(fact) not in text:
            return ValidationResult(False, f"the report never states the fact {fact!r}")
    for claim in config.get("contradictions", []):
        if _norm(claim) in text:
            return ValidationResult(False, f"the report states {claim!r}, which contradicts the story")
    return ValidationResult(True)


def _python_tests(report: str, config: dict, sandbox: Optional[SandboxConfig]) -> ValidationResult:
    code = extract_code(report)
    if not code.strip():
        return ValidationResult(False, "no ```python block in the report")
    entry = config["entry_point"]
    if not re.search(rf"^\s*def\s+{re.escape(entry)}\s*\(", code, re.MULTILINE):
        return ValidationResult(False, f"the code does not define `{entry}`")
    # Each assert runs in order and the first failure stops the run (fail-fast), naming its line.
    tests = [line for line in config["tests"].splitlines() if line.strip()]
    nonce = secrets.token_hex(16)
    limits = sandbox or SandboxConfig(
        timeout=float(config.get("timeout", 5)), cpu_seconds=max(1, int(config.get("timeout", 5)))
    )
    result = run_in_sandbox(_harness(tests), limits, files={"solution.py": code}, stdin=nonce + "\n")
    details = {"sandbox": result.status, "isolation": result.isolation, "mechanisms": list(result.mechanisms)}
    # A pass is the harness's own last line: this run's nonce and the count of asserts that held.
    # Printed text ("all tests passed") or an early exit with status 0 never has both.
    lines = result.stdout.strip().splitlines()
    if result.ok and lines and lines[-1].strip() == f"{nonce} {len(tests)}":
        return ValidationResult(True, details=details)
    if result.ok:
        return ValidationResult(
            False,
            f"the run ended with status 0 before the test harness reported {len(tests)} passed asserts",
            {**details, "stdout": result.stdout[-500:]},
        )
    return ValidationResult(
        False, f"sandbox {result.status}: {result.reason}", {**details, "stderr": result.stderr[-500:]}
    )


def _harness(tests: list[str]) -> str:
    """The test program run with the solution in the sandbox.

    It reads the nonce from stdin before the solution is imported (so it is in no file the
    solution can read) and keeps it in a closure that no global names; anything the solution
    raises, `SystemExit(0)` included, is a failure; the last line, ``<nonce> <passed asserts>``,
    goes through the stdout stream bound before the import. This defeats output-based cheats;
    code that reads the harness's own frames could still forge it, and the sandbox confines
    what that wins to the run.
    """
    harness = (
        "import sys\n"
        "def _reporter(stream, nonce):\n"
        "    def report(passed):\n"
        "        stream.write('%s %d\\n' % (nonce, passed))\n"
        "        stream.flush()\n"
        "    return report\n"
        "def _run_tests(report):\n"
        "    namespace = {'__name__': '__tests__'}\n"
        "    try:\n"
        "        exec('import solution\\nfrom solution import *', namespace)\n"
        "    except BaseException as exc:\n"
        "        raise SystemExit('importing the solution failed: ' + repr(exc))\n"
        "    passed = 0\n"
    )
    for i, line in enumerate(tests):
        test = line.strip()
        harness += "    try:\n"
        harness += f"        exec(compile({test!r}, '<test {i + 1}>', 'exec'), namespace)\n"
        harness += "    except BaseException as exc:\n"
        harness += f"        raise SystemExit('test {i + 1} failed: ' + {test!r} + ' -> ' + repr(exc))\n"
        harness += "    passed += 1\n"
    harness += "    report(passed)\n"
    return harness + "_run_tests(_reporter(sys.stdout, sys.stdin.readline().strip()))\n"


def _plan_check(report: str, config: dict, sandbox: Optional[SandboxConfig]) -> ValidationResult:
    from ..data.planning import check_plan

    answer, failure = _require_answer(report)
    if failure:
        return failure
    verdict = check_plan(config["puzzle"], answer, require_optimal=bool(config.get("require_optimal", False)))
    return ValidationResult(verdict.valid, verdict.reason)


_Validator = Callable[[str, dict, Optional[SandboxConfig]], ValidationResult]

# kind -> optional config fields (with the required ones below, the only fields a config may have:
# a misspelt optional field, e.g. `abs_tolerance`, would otherwise be ignored without a word)
_OPTIONAL_FIELDS: dict[str, set[str]] = {
    "exact_answer": {"aliases", "case_sensitive"},
    "numeric": {"rel_tol", "abs_tol"},
    "multiple_choice": set(),
    "tom_answer": set(),
    "story_consistency": {"aliases"},
    "python_tests": {"timeout"},
    "plan_check": {"require_optimal"},
}

# kind -> (function, required config fields with their types)
VALIDATOR_KINDS: dict[str, tuple[_Validator, dict[str, Any]]] = {
    "exact_answer": (_exact, {"answer": str}),
    "numeric": (_numeric, {"answer": (int, float)}),
    "multiple_choice": (_multiple_choice, {"choices": dict, "answer": str}),
    "tom_answer": (_tom, {"answer": str, "distractors": list, "order": int}),
    "story_consistency": (_story, {"answer": str, "required_facts": list, "contradictions": list}),
    "python_tests": (_python_tests, {"tests": str, "entry_point": str}),
    "plan_check": (_plan_check, {"puzzle": dict}),
}


def check_validator_spec(spec: Any) -> Optional[tuple[str, str]]:
    """Returns None when `spec` is a well-formed validator, else (field path, message)."""
    if not isinstance(spec, dict):
        return "validator", "must be an object {'kind': ..., 'config': {...}}"
    kind = spec.get("kind")
    if kind not in VALIDATOR_KINDS:
        return "validator.kind", f"must be one of {sorted(VALIDATOR_KINDS)}, got {kind!r}"
    unknown = sorted(set(spec) - {"kind", "config"})
    if unknown:
        return f"validator.{unknown[0]}", "is not a known key (allowed: 'kind', 'config')"
    config = spec.get("config")
    if not isinstance(config, dict):
        return "validator.config", "must be an object"
    allowed = set(VALIDATOR_KINDS[kind][1]) | _OPTIONAL_FIELDS[kind]
    unknown = sorted(set(config) - allowed)
    if unknown:
        return f"validator.config.{unknown[0]}", f"is not a known key for kind {kind!r} (allowed: {sorted(allowed)})"
    for name, types in VALIDATOR_KINDS[kind][1].items():
        if name not in config:
            return f"validator.config.{name}", f"is required for kind {kind!r}"
        if not isinstance(config[name], types) or isinstance(config[name], bool):
            return f"validator.config.{name}", f"must be {types}, got {type(config[name]).__name__}"
    if kind == "multiple_choice" and config["answer"].upper() not in {k.upper() for k in config["choices"]}:
        return "validator.config.answer", f"must be one of the choices {sorted(config['choices'])}"
    if kind == "tom_answer" and config["order"] not in (0, 1, 2):
        return "validator.config.order", "must be 0 (reality), 1 or 2"
    return None


def validate(report: str, validator: dict, sandbox: Optional[SandboxConfig] = None) -> ValidationResult:
    """Runs `validator` (``{"kind", "config"}``) on `report`; malformed specs raise ValueError."""
    problem = check_validator_spec(validator)
    if problem:
        raise ValueError(f"`{problem[0]}` {problem[1]}")
    function = VALIDATOR_KINDS[validator["kind"]][0]
    return function(report, validator["config"], sandbox)
