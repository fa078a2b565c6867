"""2-process CPU runs under `accelerate launch` with the shipped config (slow: each starts two processes)."""

import json
import os

import pytest
import torch
from conftest import REPO_ROOT, TINY_TRM_FLAGS, accelerate_launch
from transformers import AutoModelForCausalLM

from hf_reason import AutoModelForPuzzleSolving
from hf_reason.trainers import is_complete_checkpoint, last_complete_checkpoint


# The Sudoku example at a size that trains in seconds.
TINY_SUDOKU = [
    "--num_train_puzzles",
    "40",
    "--num_eval_puzzles",
    "8",
    "--min_givens",
    "50",
    *TINY_TRM_FLAGS,
    "--disable_tqdm",
    "true",
]


def test_every_multiprocess_script_destroys_its_process_group():
    """A script that exits with the gloo group alive can abort in interpreter teardown (rank 1,
    SIGABRT, "terminate called without an active exception"; pytorch/pytorch#179291), and destroying
    the group alone does not always prevent it. Every script that runs under `accelerate launch`
    ends with `end_distributed()` after `main()`, which collects reference cycles first (see its
    docstring)."""
    examples = REPO_ROOT / "examples"
    scripts = [
        *sorted((REPO_ROOT / "tests" / "scripts").glob("*.py")),
        *sorted(examples.glob("train_*.py")),
        examples / "sft_dpo_pipeline.py",
    ]
    assert len(scripts) >= 13
    ending = 'if __name__ == "__main__":'
    ends = {path.name: path.read_text().split(ending)[-1].strip().splitlines() for path in scripts}
    missing = [name for name, end in ends.items() if not end or end[-1].strip() != "end_distributed()"]
    assert not missing, missing


def test_end_distributed_is_a_no_op_in_a_single_process():
    """Scripts call it unconditionally: without `accelerate launch` it must neither fail nor leave a
    process group behind (twice: a script's own teardown may have run already)."""
    import torch.distributed as dist

    from hf_reason.distributed import end_distributed

    end_distributed()
    end_distributed()
    assert not (dist.is_available() and dist.is_initialized())


@pytest.mark.slow
def test_two_processes_agree_on_the_weights_after_training(tmp_path):
    result = accelerate_launch(str(REPO_ROOT / "tests" / "scripts" / "ddp_weights_check.py"), str(tmp_path))
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    # each process trained on its own shard of the data, so the agreement is DDP's doing
    assert ranks[0]["first_rows"] != ranks[1]["first_rows"]
    # and the logged losses are averaged over both processes: identical on both
    assert ranks[0]["logged_loss"] == ranks[1]["logged_loss"] and len(ranks[0]["logged_loss"]) == 2


@pytest.mark.slow
def test_sudoku_example_runs_under_accelerate_launch(tmp_path):
    out = tmp_path / "run"
    result = accelerate_launch(
        "examples/train_trm_sudoku.py",
        "--output_dir",
        str(out),
        *TINY_SUDOKU,
        "--max_steps",
        "2",
        "--save_strategy",
        "no",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    assert "eval_exact_accuracy" in result.stdout


@pytest.mark.slow
def test_rotation_waits_for_every_process_state_file(tmp_path):
    """Rank 1 is SIGKILLed while saving checkpoint-4 (save_total_limit=1), before its state file. Rank 0,
    which alone deletes checkpoints, must delete none: checkpoint-2 is the only complete one, and
    checkpoint-4 was still being written by rank 1 (a slow rank, not only a dead one)."""
    out = tmp_path / "run"
    result = accelerate_launch(
        "tests/scripts/kill_while_saving.py",
        "4",
        "1",
        "examples/train_trm_sudoku.py",
        "--output_dir",
        str(out),
        *TINY_SUDOKU,
        "--max_steps",
        "4",
        "--save_strategy",
        "steps",
        "--save_steps",
        "2",
        "--save_total_limit",
        "1",
        timeout=240,
    )
    assert result.returncode != 0
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert not (out / "checkpoint-4" / "deep_supervision_state_rank1.safetensors").exists()
    assert is_complete_checkpoint(out / "checkpoint-2")
    assert last_complete_checkpoint(out) == str(out / "checkpoint-2")


@pytest.mark.slow
def test_logging_works_when_one_process_had_no_halted_example(tmp_path):
    # Before a fixed metric key list, rank 0 (halted rows: 8 metrics) and rank 1 (none halted: 5)
    # all-reduced tensors of different lengths and the job crashed or hung.
    # a hang would otherwise hold the suite for the default 10 minutes
    result = accelerate_launch(
        str(REPO_ROOT / "tests" / "scripts" / "ds_logging_check.py"), str(tmp_path), timeout=240
    )
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["final_steps"] == [1] * 4 and ranks[1]["final_steps"] == [4] * 4  # the setup holds
    assert ranks[0]["logs"] == ranks[1]["logs"] and len(ranks[0]["logs"]) == 2
    for log in ranks[0]["logs"]:
        assert log["halt_rate"] == 0.5  # all of rank 0's examples, none of rank 1's
        assert log["mean_steps"] == 1.0  # averaged over the halted examples only (rank 0's)
        assert 0.0 <= log["exact_accuracy"] <= log["cell_accuracy"] <= 1.0


@pytest.mark.slow
def test_fsdp_config_trains_like_ddp_and_saves_the_same_model(tmp_path):
    """accelerate_configs/fsdp.yaml on 2 CPU processes (gloo). accelerate runs CPU processes as DDP
    whatever the config says, so tests/scripts/fsdp_check.py switches its FSDP2 path on by hand (see
    its docstring); everything else is the config's. On the same data and initial weights, FSDP2 must
    log the losses DDP logs and save the model DDP saves."""
    result = accelerate_launch(
        str(REPO_ROOT / "tests" / "scripts" / "fsdp_check.py"),
        str(tmp_path),
        config="fsdp.yaml",
        launch_args=("--num_processes", "2", "--mixed_precision", "no"),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for family, block in (("trm", "TRMBlock"), ("crsm", "MambaBlock")):
        ddp, fsdp = ranks[0][family]["ddp"], ranks[0][family]["fsdp"]
        assert (ddp["type"], fsdp["type"]) == ("MULTI_CPU", "FSDP"), family
        # each block is its own FSDP unit (from the model's _no_split_modules), and the parameters are
        # split between the ranks (shards of uneven rows hold a little more than half)
        assert fsdp["model_is_fsdp"] and fsdp["blocks"] == 2 and fsdp["blocks_are_fsdp"], (family, block)
        numel = [r[family]["fsdp"]["local_numel"] for r in ranks]
        assert max(numel) < 0.6 * ddp["local_numel"] <= 0.6 * sum(numel), (family, numel, ddp["local_numel"])
        assert fsdp["losses"] == pytest.approx(ddp["losses"], abs=2e-4), family  # logged with 4 decimals
        # the saved folder is the one DDP saves (the model's own code files and auto_map)
        assert (fsdp["files"], fsdp["auto_map"]) == (ddp["files"], ddp["auto_map"]), family
        # the FSDP file also holds the tied lm_head (a gathered copy): compare the models as loaded
        auto = AutoModelForPuzzleSolving if family == "trm" else AutoModelForCausalLM
        loaded = {mode: auto.from_pretrained(tmp_path / f"{family}_{mode}").state_dict() for mode in ("ddp", "fsdp")}
        for name, weight in loaded["ddp"].items():
            torch.testing.assert_close(loaded["fsdp"][name], weight, rtol=1e-4, atol=1e-5, msg=f"{family}: {name}")
    trm = ranks[0]["trm"]["fsdp"]
    # resumed from its checkpoint-2 ("last") and continued the DDP curve; save_total_limit=1 kept one
    assert sorted(trm["first_losses"]) == ["1", "2"] and sorted(trm["losses"]) == ["1", "2", "3", "4"]
    assert [os.path.basename(c) for c in trm["checkpoints"]] == ["checkpoint-4"]
    assert 0.0 <= trm["eval_exact_accuracy"] <= 1.0
    assert "not supported with FSDP" in ranks[0]["trm"]["ema_refusal"]
    assert ranks[0]["trm"]["fsdp"]["losses"] == ranks[1]["trm"]["fsdp"]["losses"]
    # FSDP2 cannot shard meta-attention: its gate is a 0-dimensional parameter (README, Multi-GPU)
    assert "scalar parameters" in ranks[0]["meta_attention"]["fsdp"]["error"]
    assert "gate" in ranks[0]["meta_attention"]["fsdp"]["error"]
