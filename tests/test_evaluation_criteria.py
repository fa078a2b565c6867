"""hf_reason.evaluation.criteria: the success criteria with and without the module, paired by task."""

import pytest

from hf_reason.evaluation.criteria import GOALS, compare_goals, goal_outcomes, goals_table


def scores(coverage=1.0, validator=True, alignment=0.5, focus=None):
    return {"coverage": coverage, "validator": validator, "reflection_alignment": alignment, "focus_accuracy": focus}


def test_goal_outcomes_applies_each_criterion_to_its_tasks():
    tom = goal_outcomes("t1", "theory_of_mind", scores(validator=True, focus=0.5), tom_belief=False)
    assert tom == {
        "task_id": "t1",
        "coverage": 1.0,
        "diagnosis": None,
        "reflection_alignment": 0.5,
        "focus_accuracy": 0.5,
        "tom": 1.0,
        "tom_belief": 0.0,
    }
    diag = goal_outcomes("d1", "diagnostics", scores(validator=False))
    assert diag["diagnosis"] == 0.0 and diag["tom"] is None and diag["tom_belief"] is None
    with pytest.raises(ValueError, match="lack 'focus_accuracy'"):
        goal_outcomes("x", "math", {"coverage": 1.0, "validator": True, "reflection_alignment": 0.0})


def test_compare_goals_pairs_by_task_and_checks_absolute_and_relative_goals():
    meta, no_meta = [], []
    for i in range(12):
        # ToM: 10 / 12 right with the module, 4 / 12 without; every discordant pair favours the module
        meta.append(goal_outcomes(f"tom{i}", "theory_of_mind", scores(validator=i < 10, focus=0.9), i < 10))
        no_meta.append(goal_outcomes(f"tom{i}", "theory_of_mind", scores(validator=i < 4, focus=0.3), i < 2))
    meta.append(goal_outcomes("d", "diagnostics", scores(coverage=0.5, focus=None)))
    no_meta.append(goal_outcomes("d", "diagnostics", scores(coverage=0.5, focus=0.2)))
    meta.append(goal_outcomes("only-meta", "math", scores(focus=1.0)))  # no partner: not counted
    rows = {r["criterion"]: r for r in compare_goals(meta, list(reversed(no_meta)), samples=999)}
    assert [name for name, *_ in GOALS] == list(rows)

    tom = rows["tom_accuracy"]
    assert tom["n"] == 12 and tom["meta"] == pytest.approx(10 / 12) and tom["no_meta"] == pytest.approx(4 / 12)
    assert tom["ratio"] == pytest.approx(2.5) and tom["met"] is True
    assert tom["p"] == pytest.approx(2 / 2**6)  # exact McNemar, b = 6, c = 0
    assert rows["tom_belief"]["ratio"] == pytest.approx(5.0)

    focus = rows["focus_accuracy"]  # the diagnostics task has no claim with the module: only 12 pairs
    assert focus["n"] == 12 and focus["meta"] == pytest.approx(0.9) and focus["ratio"] == pytest.approx(3.0)
    assert focus["met"] is True and focus["p"] < 0.01  # 12 same-sign differences: exact p = 2 / 4096

    coverage = rows["plan_monitor_coverage"]  # equal in both arms: no evidence, goal missed
    assert coverage["n"] == 13 and coverage["p"] == 1.0 and coverage["ratio"] == pytest.approx(1.0)
    assert coverage["meta"] == pytest.approx((12 + 0.5) / 13) and coverage["met"] is True
    assert rows["diagnosis_accuracy"]["meta"] == 1.0 and rows["diagnosis_accuracy"]["met"] is True
    assert rows["reflection_alignment"]["met"] is False  # 0.5 < 0.8

    empty = {r["criterion"]: r for r in compare_goals(meta[:1], [], samples=10)}
    assert empty["tom_accuracy"]["n"] == 0 and empty["tom_accuracy"]["met"] is None

    table = goals_table(list(rows.values())).splitlines()
    assert table[0] == "| criterion | goal | with module | without | ratio | paired p | n | met |"
    assert (
        table[2 + 3]
        == "| focus_accuracy | >= 0.8 and >= 2.0x without | 0.900 | 0.300 | 3.00 | " + f"{focus['p']:.4f} | 12 | yes |"
    )
    assert table[2 + 4].startswith("| tom_accuracy | >= 1.2x without | 0.833 | 0.333 | 2.50 |")
