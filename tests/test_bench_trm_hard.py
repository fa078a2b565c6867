"""bench/trm_hard.py's bookkeeping: the resumable CPU clock of its curve and the paired comparison."""

import importlib.util
import json
import sys
from types import SimpleNamespace

import pytest
from conftest import REPO_ROOT


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(REPO_ROOT / "examples"))
    spec = importlib.util.spec_from_file_location("bench_trm_hard", REPO_ROOT / "bench" / "trm_hard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path.remove(str(REPO_ROOT / "examples"))


def test_a_resumed_curve_restarts_its_clock_where_the_checkpoint_was_saved(bench, tmp_path):
    path = tmp_path / "curve.json"
    points = [{"step": s, "cpu_s": 10.0 * s, "exact": 0.0, "cell": 0.1} for s in (1, 8, 12)]
    path.write_text(json.dumps({"points": points, "saves": {"5": 55.0, "10": 105.0}}))
    curve = bench.ScoreCurve(None, path, every_s=60.0, budget_s=600.0, batch_size=1)
    curve.on_train_begin(None, SimpleNamespace(global_step=10), None)
    # the point after the checkpoint goes with its steps; the clock is the one saved with step 10
    assert [p["step"] for p in curve.points] == [1, 8]
    assert curve.saves == {"5": 55.0, "10": 105.0} and curve.offset == 105.0
    assert 105.0 <= curve.spent() < 106.0
    curve.on_save(None, SimpleNamespace(global_step=15), None)
    assert json.loads(path.read_text())["saves"]["15"] >= 105.0
    # a curve written without checkpoint clocks falls back to its last point before the checkpoint
    path.write_text(json.dumps({"points": points}))
    curve = bench.ScoreCurve(None, path, every_s=60.0, budget_s=600.0, batch_size=1)
    curve.on_train_begin(None, SimpleNamespace(global_step=10), None)
    assert curve.offset == 80.0


def test_paired_bootstrap_of_identical_and_shifted_runs(bench):
    assert bench.paired_bootstrap([0.2, 0.5, 0.9], [0.2, 0.5, 0.9]) == (0.0, 0.0, 0.0)
    diff, low, high = bench.paired_bootstrap([0.3, 0.6, 1.0], [0.2, 0.5, 0.9])
    assert diff == pytest.approx(0.1) and low == pytest.approx(0.1) and high == pytest.approx(0.1)
    diff, low, high = bench.paired_bootstrap([1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0])
    assert diff == 0.5 and 0.0 <= low < 0.5 < high <= 1.0


def test_compare_pairs_every_run_with_the_first(bench, tmp_path, monkeypatch):
    runs = []
    for name, exact, cells in (
        ("base", [1, 0, 0, 1], [1.0, 0.5, 0.2, 1.0]),
        ("other", [1, 1, 1, 0], [1.0, 1.0, 1.0, 0.6]),
    ):
        run = tmp_path / name
        run.mkdir()
        (run / "final.json").write_text(json.dumps({"exact": exact, "cells": cells, "cpu_s": 60.0}))
        (run / "curve.json").write_text(json.dumps({"points": [{"step": 1, "cpu_s": 60.0, "exact": 0.5}]}))
        runs.append(str(run))
    bench.compare_command(SimpleNamespace(runs=runs, output_dir=str(tmp_path)))
    base, other = json.loads((tmp_path / "compare.json").read_text())
    assert (base["mcnemar_b"], base["mcnemar_c"], base["p"], base["cell_difference"]) == (0, 0, 1.0, 0.0)
    # other solves puzzles 2 and 3 that base misses, and misses puzzle 4 that base solves
    assert (other["exact"], other["mcnemar_b"], other["mcnemar_c"]) == (0.75, 2, 1)
    assert other["cell_difference"] == pytest.approx((0.0 + 0.5 + 0.8 - 0.4) / 4)
    assert (tmp_path / "compare.png").stat().st_size > 0


def test_the_final_scores_reuse_the_budget_point_and_score_anew_after_later_steps(bench, tmp_path, monkeypatch):
    calls = []

    def fake_solve_and_score(model, dataset, batch_size, blank_token=None):
        calls.append(model)
        return {"exact": [len(calls) == 1], "cells": [float(len(calls))], "cell": float(len(calls))}

    monkeypatch.setattr(bench, "solve_and_score", fake_solve_and_score)
    curve = bench.ScoreCurve(None, tmp_path / "curve.json", every_s=60.0, budget_s=600.0, batch_size=1)
    curve.trainer = SimpleNamespace(evaluation_model=lambda: "model")
    curve.score(step=7, spent=600.0)
    assert curve.scores_at(7) == {"exact": [True], "cells": [1.0], "cell": 1.0} and len(calls) == 1
    # training went on after the newest point (e.g. it stopped on max_steps): the model is scored again
    assert curve.scores_at(9) == {"exact": [False], "cells": [2.0], "cell": 2.0} and len(calls) == 2
