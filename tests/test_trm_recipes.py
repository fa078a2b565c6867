"""The hard-puzzle recipes of the TRM examples build the promised data, model and training settings."""

import importlib
import sys
from pathlib import Path

import pytest


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def example(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))

    def parse(script: str, *argv: str, world_size: int = 1):
        module = importlib.import_module(script)
        monkeypatch.setattr(sys, "argv", [script, *argv])
        if module.requested_recipe() == "paper":
            # as `accelerate launch --num_processes N` sets it; only the batch split reads it here
            monkeypatch.setenv("WORLD_SIZE", str(world_size))
            module.RECIPES["paper"]["per_device_train_batch_size"] = module.paper_batch_size()
            monkeypatch.delenv("WORLD_SIZE")
        defaults = getattr(module, "MAZE_MODEL_DEFAULTS", None)
        return module.parse_args(
            module.SudokuArguments if script.endswith("sudoku") else module.MazeArguments,
            model_defaults=defaults,
            recipes=module.RECIPES,
        )

    return parse


def test_sudoku_paper_recipe_is_the_methods_setting(example, tmp_path):
    data, model, training = example("train_trm_sudoku", "--recipe", "paper", "--output_dir", str(tmp_path))
    assert (data.num_train_puzzles, data.num_augmentations, data.level) == (1000, 1000, "extreme")
    assert data.num_eval_puzzles == 1000
    assert (model.hidden_size, model.num_heads, model.expansion, model.L_layers) == (512, 8, 4.0, 2)
    assert (model.H_cycles, model.L_cycles, model.halt_max_steps, model.halt_exploration_prob) == (3, 6, 16, 0.1)
    assert (model.mixer, model.pos_encodings, model.puzzle_emb_ndim, model.puzzle_emb_len) == ("mlp", "none", 512, 16)
    assert training.per_device_train_batch_size == 768
    assert (training.learning_rate, training.puzzle_emb_lr, training.weight_decay) == (1e-4, 1e-4, 1.0)
    assert (training.puzzle_emb_weight_decay, training.adam_beta2, training.warmup_steps) == (1.0, 0.95, 2000)
    assert (training.ema_decay, training.max_steps, training.bf16) == (0.999, 65104, True)
    assert training.lr_scheduler_type == "constant_with_warmup"


def test_paper_batch_is_split_over_processes_and_flags_override_the_recipe(example, tmp_path):
    data, model, training = example(
        "train_trm_sudoku", "--recipe", "paper", "--hidden_size", "64", "--output_dir", str(tmp_path), world_size=4
    )
    assert training.per_device_train_batch_size == 192 and model.hidden_size == 64


def test_maze_paper_recipe_is_the_methods_setting(example, tmp_path):
    data, model, training = example("train_trm_maze", "--recipe=paper", "--output_dir", str(tmp_path))
    assert (data.maze_preset, data.num_train_mazes, data.num_augmentations) == ("hard", 1000, 7)
    assert (model.mixer, model.pos_encodings, model.H_cycles, model.L_cycles) == ("attention", "rope", 3, 4)
    assert (model.hidden_size, model.puzzle_emb_ndim, model.puzzle_emb_len) == (512, 512, 16)
    assert (training.learning_rate, training.weight_decay, training.ema_decay, training.max_steps) == (
        1e-4,
        1.0,
        0.999,
        65104,
    )


@pytest.mark.parametrize("script", ["train_trm_sudoku", "train_trm_maze"])
def test_cpu_2h_recipes_stop_on_a_two_hour_budget(example, tmp_path, script):
    data, model, training = example(script, "--recipe", "cpu-2h", "--output_dir", str(tmp_path))
    assert data.time_budget_minutes == 120.0 and training.max_steps >= 100_000
    assert training.learning_rate == 1e-3 and training.ema_decay == 0.99
    assert model.hidden_size in (64, 128)


def test_unknown_recipe_is_refused(example, tmp_path):
    with pytest.raises(SystemExit, match="--recipe must be one of"):
        example("train_trm_sudoku", "--recipe", "gpu-9000", "--output_dir", str(tmp_path))


def test_generated_data_is_cached_by_its_generation_arguments(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    from trm_common import cached_generation

    from hf_reason.data.maze import generate_mazes

    calls = []

    def generate_small_mazes(**kwargs):
        calls.append(kwargs)
        return generate_mazes(**kwargs)

    first = cached_generation(str(tmp_path), generate_small_mazes, num_mazes=3, size=9, seed=1, progress=False)
    again = cached_generation(str(tmp_path), generate_small_mazes, num_mazes=3, size=9, seed=1, progress=False)
    other = cached_generation(str(tmp_path), generate_small_mazes, num_mazes=3, size=9, seed=2, progress=False)
    assert len(calls) == 2  # the repeated arguments were read from the cache
    assert again.to_dict() == first.to_dict()
    assert other["input_ids"] != first["input_ids"]
    assert len([p for p in tmp_path.iterdir() if not p.name.startswith(".")]) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
    assert cached_generation(None, generate_small_mazes, num_mazes=1, size=9, progress=False).num_rows == 1
    assert len(calls) == 3
