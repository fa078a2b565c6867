"""hf-reason's evaluate metric modules load from a local path, offline, and compute the right values."""

import evaluate
import pytest

from hf_reason.evaluation import metric_path, wilson_interval


def test_puzzle_accuracy_loads_offline_and_scores_cells_and_puzzles():
    metric = evaluate.load(metric_path("puzzle_accuracy"))
    predictions = [[1, 2, 3, 4], [1, 2, 0, 4], [5, 5, 5, 5]]
    references = [[-100, 2, 3, 4], [1, 2, 3, 4], [-100, -100, 5, 6]]
    result = metric.compute(predictions=predictions, references=references)
    assert result["cell_accuracy"] == pytest.approx((3 + 3 + 1) / (3 + 4 + 2))
    assert result["exact_accuracy"] == pytest.approx(1 / 3)
    assert (result["num_exact"], result["num_puzzles"]) == (1, 3)
    assert (result["exact_ci_low"], result["exact_ci_high"]) == pytest.approx(wilson_interval(1, 3))


def test_puzzle_accuracy_accumulates_batches_like_any_evaluate_metric():
    metric = evaluate.load(metric_path("puzzle_accuracy"))
    metric.add_batch(predictions=[[1, 2]], references=[[1, 2]])
    metric.add_batch(predictions=[[1, 1]], references=[[1, 2]])
    assert metric.compute()["exact_accuracy"] == 0.5


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown metric 'accuracy'.*puzzle_accuracy"):
        metric_path("accuracy")
    metric = evaluate.load(metric_path("puzzle_accuracy"))
    with pytest.raises(ValueError, match=r"predictions\[0\] has 2 tokens but references\[0\] has 3"):
        metric.compute(predictions=[[1, 2]], references=[[1, 2, 3]])
