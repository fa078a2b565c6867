"""Cell and exact-puzzle accuracy, as an `evaluate` metric module that loads from a local path.

`evaluate.load("accuracy")` fetches its script from the Hub; this module ships inside hf-reason, so
`evaluate.load(hf_reason.evaluation.metric_path("puzzle_accuracy"))` works offline and plugs into a
stock `Trainer(compute_metrics=...)` or an `evaluate.combine` like any Hub metric.
"""

import datasets
import evaluate

from hf_reason.evaluation.statistics import wilson_interval


_DESCRIPTION = """
Puzzle accuracy for grid reasoners (Sudoku, mazes, ARC-AGI): each prediction and reference is the
token sequence of one puzzle. Positions whose reference equals `ignore_index` (default -100, the
transformers convention for padding / givens) are not scored. Returns the cell accuracy over scored
positions, the exact accuracy (every scored cell right), the number of puzzles and exact solves, and
the Wilson 95% interval of the exact accuracy.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[list[int]]`): predicted token ids, one sequence per puzzle.
    references (`list[list[int]]`): target token ids, same lengths; `ignore_index` marks unscored cells.
    ignore_index (`int`, defaults to -100): reference value of positions that are not scored.
    z (`float`, defaults to 1.959964): normal quantile of the interval (1.96 = 95%).
Returns:
    cell_accuracy, exact_accuracy, exact_ci_low, exact_ci_high, num_exact, num_puzzles
Examples:
    >>> metric = evaluate.load(hf_reason.evaluation.metric_path("puzzle_accuracy"))
    >>> metric.compute(predictions=[[1, 2, 3], [1, 2, 0]], references=[[-100, 2, 3], [1, 2, 3]])["exact_accuracy"]
    0.5
"""

_CITATION = """
@article{wilson1927probable,
  title={Probable inference, the law of succession, and statistical inference},
  author={Wilson, Edwin B.}, journal={Journal of the American Statistical Association},
  volume={22}, number={158}, pages={209--212}, year={1927}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class PuzzleAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int64")),
                    "references": datasets.Sequence(datasets.Value("int64")),
                }
            ),
        )

    def _compute(self, predictions, references, ignore_index: int = -100, z: float = 1.959964):
        scored = right = exact = 0
        for i, (prediction, reference) in enumerate(zip(predictions, references)):
            if len(prediction) != len(reference):
                raise ValueError(
                    f"predictions[{i}] has {len(prediction)} tokens but references[{i}] has {len(reference)}: "
                    "each puzzle's prediction must cover every position of its reference"
                )
            pairs = [(p, r) for p, r in zip(prediction, reference) if r != ignore_index]
            hits = sum(p == r for p, r in pairs)
            scored += len(pairs)
            right += hits
            exact += hits == len(pairs)
        n = len(references)
        low, high = wilson_interval(exact, n, z=z)
        return {
            "cell_accuracy": right / scored if scored else 0.0,
            "exact_accuracy": exact / n if n else 0.0,
            "exact_ci_low": low,
            "exact_ci_high": high,
            "num_exact": exact,
            "num_puzzles": n,
        }
