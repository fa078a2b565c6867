"""The introspective reasoner's success criteria, compared with and without the meta-attention module.

Each criterion is measured per held-out task on the reports after training, and the two arms (same
seed, data and steps; the module on / off) are paired by task: both means, their ratio, a paired test
and whether the goal is met. `examples/train_meta_attention.py` writes the table as `goals.md`.
"""

from typing import Optional

from .statistics import mcnemar_from_outcomes, paired_sign_flip_p


# (name, per-task value it compares, pass / fail?, least value with the module or None, least ratio
# with / without the module or None)
GOALS = (
    ("plan_monitor_coverage", "coverage", False, 0.85, None),
    ("diagnosis_accuracy", "diagnosis", True, 0.9, None),
    ("reflection_alignment", "reflection_alignment", False, 0.8, None),
    ("focus_accuracy", "focus_accuracy", False, 0.8, 2.0),
    ("tom_accuracy", "tom", True, None, 1.2),
    ("tom_belief", "tom_belief", True, None, 1.2),
)


def goal_outcomes(task_id: str, category: str, scores: dict, tom_belief: Optional[bool] = None) -> dict:
    """Per-task values of the criteria in `GOALS` (None where a criterion does not apply to the task).

    Args:
        task_id: the task's id (the key the arms are paired on).
        category: the task's category; diagnosis accuracy counts ``diagnostics`` tasks, the ToM rows
            ``theory_of_mind`` tasks.
        scores: `ReportEvaluator.score` of the report (``coverage``, ``validator``,
            ``reflection_alignment``, ``focus_accuracy``).
        tom_belief: for a ToM task, whether the answer is right *and* the reflection speaks of the
            agent's belief (`hf_reason.workspace.refers_to_belief`).
    """
    for key in ("coverage", "validator", "reflection_alignment", "focus_accuracy"):
        if key not in scores:
            raise ValueError(f"goal_outcomes: scores of task {task_id!r} lack {key!r} (ReportEvaluator.score's)")
    tom = category == "theory_of_mind"
    return {
        "task_id": task_id,
        "coverage": scores["coverage"],
        "diagnosis": float(scores["validator"]) if category == "diagnostics" else None,
        "reflection_alignment": scores["reflection_alignment"],
        "focus_accuracy": scores["focus_accuracy"],
        "tom": float(scores["validator"]) if tom else None,
        "tom_belief": float(bool(tom_belief)) if tom and tom_belief is not None else None,
    }


def compare_goals(with_module: list[dict], without_module: list[dict], samples: int = 10000) -> list[dict]:
    """Each criterion of `GOALS` with and without the module, paired by task.

    Args:
        with_module, without_module: `goal_outcomes` of each arm's reports.
        samples: sign assignments of the permutation test.

    Returns one dict per criterion: ``n`` (tasks where both arms have a value, e.g. reports that make
    focus claims in both), ``meta`` / ``no_meta`` (the means), ``ratio``, ``p`` (exact McNemar for pass /
    fail criteria, a paired sign-flip permutation test otherwise), ``goal`` / ``ratio_goal`` and ``met``
    (None where no task counts).
    """
    by_task = {o["task_id"]: o for o in without_module}
    rows = []
    for name, key, binary, least, ratio_goal in GOALS:
        pairs = [
            (o[key], by_task[o["task_id"]][key])
            for o in with_module
            if o["task_id"] in by_task and o[key] is not None and by_task[o["task_id"]][key] is not None
        ]
        row = {"criterion": name, "n": len(pairs), "goal": least, "ratio_goal": ratio_goal}
        if not pairs:
            rows.append({**row, "meta": None, "no_meta": None, "ratio": None, "p": None, "met": None})
            continue
        meta = sum(a for a, _ in pairs) / len(pairs)
        no_meta = sum(b for _, b in pairs) / len(pairs)
        if binary:
            p = mcnemar_from_outcomes([a > 0.5 for a, _ in pairs], [b > 0.5 for _, b in pairs])[2]
        else:
            p = paired_sign_flip_p([a - b for a, b in pairs], samples)
        ratio = meta / no_meta if no_meta > 0 else (None if meta == 0 else float("inf"))
        met = (least is None or meta >= least) and (ratio_goal is None or (ratio is not None and ratio >= ratio_goal))
        rows.append({**row, "meta": meta, "no_meta": no_meta, "ratio": ratio, "p": p, "met": met})
    return rows


def goals_table(rows: list[dict]) -> str:
    """The rows of `compare_goals` as a markdown table."""

    def num(value, digits=3):
        return "n/a" if value is None else f"{value:.{digits}f}"

    lines = [
        "| criterion | goal | with module | without | ratio | paired p | n | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        goal = [f">= {r['goal']}"] if r["goal"] is not None else []
        goal += [f">= {r['ratio_goal']}x without"] if r["ratio_goal"] is not None else []
        met = "n/a" if r["met"] is None else ("yes" if r["met"] else "no")
        lines.append(
            f"| {r['criterion']} | {' and '.join(goal)} | {num(r['meta'])} | {num(r['no_meta'])} | "
            f"{num(r['ratio'], 2)} | {num(r['p'], 4)} | {r['n']} | {met} |"
        )
    return "\n".join(lines)
