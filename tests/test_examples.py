"""The examples run end to end at tiny size, and --help documents every flag."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_TRM_FLAGS


REPO_ROOT = Path(__file__).resolve().parents[1]
TINY = [
    *TINY_TRM_FLAGS,
    "--max_steps",
    "2",
    "--disable_tqdm",
    "true",
    "--save_strategy",
    "no",
]


def run(*args, timeout=300):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    return subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    "script,args_class",
    [("train_trm_sudoku", "SudokuArguments"), ("train_trm_maze", "MazeArguments"), ("train_trm_arc", "ArcArguments")],
)
def test_help_documents_every_flag(script, args_class):
    result = run(f"examples/{script}.py", "--help")
    assert result.returncode == 0, result.stderr
    for flag in ("--hidden_size", "--H_cycles", "--halting", "--ema_decay", "--puzzle_emb_lr", "--output_dir"):
        assert flag in result.stdout
    # every flag the example adds (script, model and trainer fields) carries a help text
    import dataclasses
    import importlib

    sys.path.insert(0, str(REPO_ROOT / "examples"))
    try:
        module = importlib.import_module(script)
        common = importlib.import_module("trm_common")
    finally:
        sys.path.pop(0)
    from hf_reason.trainers import DeepSupervisionConfig

    own_fields = [*dataclasses.fields(getattr(module, args_class)), *dataclasses.fields(common.TRMModelArguments)]
    own_fields += [
        f for f in dataclasses.fields(DeepSupervisionConfig) if f.name in DeepSupervisionConfig.__annotations__
    ]
    for f in own_fields:
        assert f.metadata.get("help"), f"{script}: --{f.name} has no help text"
        assert f"--{f.name}" in result.stdout


def _import_example(name):
    import importlib

    sys.path.insert(0, str(REPO_ROOT / "examples"))
    try:
        return importlib.import_module(name), importlib.import_module("trm_common")
    finally:
        sys.path.pop(0)


@pytest.mark.parametrize(
    "script,defaults_name,argv,expected",
    [
        ("train_trm_maze", "MAZE_MODEL_DEFAULTS", [], dict(mixer="attention", pos_encodings="rope")),
        (
            "train_trm_maze",
            "MAZE_MODEL_DEFAULTS",
            ["--mixer", "mlp", "--pos_encodings", "none"],
            dict(mixer="mlp", pos_encodings="none"),
        ),
        (
            "train_trm_arc",
            "ARC_MODEL_DEFAULTS",
            [],
            dict(mixer="attention", pos_encodings="rope", puzzle_emb_ndim=None),
        ),
        (
            "train_trm_arc",
            "ARC_MODEL_DEFAULTS",
            ["--mixer", "mlp", "--pos_encodings", "none", "--puzzle_emb_ndim", "0"],
            dict(mixer="mlp", pos_encodings="none", puzzle_emb_ndim=0),
        ),
        ("train_trm_sudoku", None, [], dict(mixer="mlp", pos_encodings="none", puzzle_emb_ndim=0)),
    ],
)
def test_task_model_defaults_never_override_explicit_flags(monkeypatch, script, defaults_name, argv, expected):
    module, common = _import_example(script)
    args_class = {"train_trm_maze": "MazeArguments", "train_trm_arc": "ArcArguments"}.get(script, "SudokuArguments")
    defaults = getattr(module, defaults_name) if defaults_name else None
    monkeypatch.setattr(sys, "argv", [script, "--output_dir", "unused", *argv])
    _, model_args, _ = common.parse_args(getattr(module, args_class), model_defaults=defaults)
    assert {k: getattr(model_args, k) for k in expected} == expected


def test_maze_example_trains_and_saves(tmp_path):
    result = run(
        "examples/train_trm_maze.py",
        "--output_dir",
        str(tmp_path),
        "--maze_size",
        "10",
        "--num_train_mazes",
        "16",
        "--num_eval_mazes",
        "4",
        *TINY,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "model.safetensors").is_file()
    assert "'eval_exact_accuracy'" in result.stdout
    import json

    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["mixer"], config["pos_encodings"], config["seq_len"]) == ("attention", "rope", 100)


def test_arc_example_trains_with_puzzle_embeddings(tmp_path):
    result = run(
        "examples/train_trm_arc.py",
        "--output_dir",
        str(tmp_path),
        "--num_augmentations",
        "0",
        "--include_training_tasks",
        "false",
        "--puzzle_emb_ndim",
        "32",
        *TINY,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    config = json.loads((tmp_path / "config.json").read_text())
    assert config["puzzle_emb_ndim"] == 32 and config["num_puzzle_identifiers"] > 400  # one per ARC eval task
    assert config["seq_len"] == 900


SUDOKU_TINY = [
    "examples/train_trm_sudoku.py",
    "--num_train_puzzles",
    "40",
    "--num_eval_puzzles",
    "4",
    "--min_givens",
    "50",
    *TINY[:-2],  # the tests choose their checkpoints
]


def test_sudoku_example_killed_while_saving_resumes_from_the_last_complete_checkpoint(tmp_path):
    """SIGKILLed while saving checkpoint-4 under `save_total_limit=1`, after the Trainer's own files
    and before the state file: checkpoint-2 is still there, and `--resume_from_checkpoint last` takes it."""
    flags = [*SUDOKU_TINY, "--output_dir", str(tmp_path), "--max_steps", "4"]
    checkpoints = ["--save_strategy", "steps", "--save_steps", "2", "--save_total_limit", "1"]
    killed = run("tests/scripts/kill_while_saving.py", "4", "0", *flags, *checkpoints)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not (tmp_path / "checkpoint-4" / "deep_supervision_state_rank0.safetensors").exists()
    assert (tmp_path / "checkpoint-2" / "deep_supervision_state_rank0.safetensors").is_file()

    resumed = run(*flags, *checkpoints, "--resume_from_checkpoint", "last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming from {tmp_path / 'checkpoint-2'}" in resumed.stdout
    assert "Trained to global step 4." in resumed.stdout
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-4"]


def test_sudoku_example_refuses_to_resume_without_a_complete_checkpoint(tmp_path):
    (tmp_path / "checkpoint-4").mkdir()  # left by a run killed while saving its first checkpoint
    result = run(*SUDOKU_TINY, "--output_dir", str(tmp_path), "--resume_from_checkpoint", "last")
    assert result.returncode != 0
    assert (
        f"no complete checkpoint in {tmp_path} (incomplete, interrupted while saving: checkpoint-4)" in result.stderr
    )
    assert "Trained to" not in result.stdout


def test_sudoku_example_seed_fixes_the_initial_weights(tmp_path):
    """Two runs with one --seed log the same losses from the first step on and save the same weights."""
    runs = []
    for name in ("a", "b"):
        result = run(*SUDOKU_TINY, "--output_dir", str(tmp_path / name), "--logging_steps", "1", "--seed", "3")
        assert result.returncode == 0, result.stderr[-3000:]
        runs.append(result)
    losses = [[line for line in r.stdout.splitlines() if line.startswith("{'loss'")] for r in runs]
    assert len(losses[0]) == 2 and losses[0] == losses[1]
    weights = [(tmp_path / name / "model.safetensors").read_bytes() for name in ("a", "b")]
    assert weights[0] == weights[1]


def test_demo_runs_end_to_end_at_a_tiny_budget(tmp_path):
    result = run(
        "examples/demo.py", "--output_dir", str(tmp_path), "--max_steps", "3", "--num_train", "64", "--num_eval", "16"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "identical predictions: True" in result.stdout
    assert "exact puzzles" in result.stdout
    for png in ("sudoku_refinement.png", "training_curves.png"):
        assert (tmp_path / png).stat().st_size > 10_000
    assert (tmp_path / "trm-sudoku" / "model.safetensors").is_file()
