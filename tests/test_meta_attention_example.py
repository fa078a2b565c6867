"""examples/train_meta_attention.py: the preset mechanics, the Answer-line stop, and a tiny end-to-end run."""

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hf_reason.data.text import build_tokenizer
from hf_reason.evaluation.criteria import GOALS
from hf_reason.evaluation.reports import SCORE_NAMES


REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "examples" / "train_meta_attention.py"
ROW_NAMES = [
    *SCORE_NAMES,
    "overall",
    "focus_match",
    "focus_accuracy",
    "tom_belief",
    "reports_with_focus_claims",
    "has_plan",
    "has_step",
    "has_monitor",
    "has_diagnosis",
    "has_reflection",
    "has_answer",
]


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("train_meta_attention", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_preset_flags_come_first_so_explicit_flags_win(example):
    argv = example.expand_preset(["--preset", "cpu", "--max_steps", "7", "--output_dir", "x"])
    # argparse keeps the last occurrence of a flag
    assert argv.index("--max_steps") < len(argv) - 4 and argv[-4:] == ["--max_steps", "7", "--output_dir", "x"]
    from transformers import HfArgumentParser
    from trl import SFTConfig

    args, sft = HfArgumentParser((example.WarmupArguments, SFTConfig)).parse_args_into_dataclasses(args=argv)
    assert sft.max_steps == 7 and args.preset == "cpu"
    assert args.n_layer == 3 and args.vocab_size == 2048 and args.max_eval_tasks > 20
    assert not sft.gradient_checkpointing and not sft.bf16 and sft.learning_rate == 2e-3
    assert example.expand_preset(["--preset=cpu"])[:2] == ["--n_embd", example.PRESETS["cpu"]["n_embd"]]
    assert example.expand_preset(["--max_steps", "3"]) == ["--max_steps", "3"]
    with pytest.raises(ValueError, match="--preset must be one of"):
        example.expand_preset(["--preset", "gpu-cluster"])


def test_generation_stops_after_the_answer_line(example):
    tokenizer = build_tokenizer(vocab_size=300, texts=["Plan: add.\nStep 1: 2 + 2 = 4.\nAnswer: 4\nmore text"] * 4)
    prompt = tokenizer("Q?\n", add_special_tokens=False)["input_ids"]
    stop = example.StopAfterAnswerLine(tokenizer, len(prompt))

    def done(text):
        ids = torch.tensor([prompt + tokenizer(text, add_special_tokens=False)["input_ids"]])
        return bool(stop(ids, None)[0])

    assert not done("Plan: add.\nStep 1: 2 + 2 = 4.\n")
    assert not done("Plan: add.\nAnswer: 4")  # the answer may still grow
    assert done("Plan: add.\nAnswer: 4\n")
    # an "Answer:" inside the prompt does not count
    prompt_with_answer = tokenizer("Answer: 3\n", add_special_tokens=False)["input_ids"]
    stop_after_prompt = example.StopAfterAnswerLine(tokenizer, len(prompt_with_answer))
    ids = torch.tensor([prompt_with_answer + tokenizer("Plan: x\n", add_special_tokens=False)["input_ids"]])
    assert not bool(stop_after_prompt(ids, None)[0])


@pytest.mark.slow
def test_tiny_run_writes_table_results_and_pictures(tmp_path):
    out = tmp_path / "run"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "OMP_NUM_THREADS": "1",
    }
    tiny = [
        "--preset",
        "cpu",
        "--output_dir",
        str(out),
        "--n_embd",
        "32",
        "--n_layer",
        "1",
        "--n_head",
        "2",
        "--n_positions",
        "256",
        "--vocab_size",
        "300",
        "--generated_per_category",
        "2",
        "--max_eval_tasks",
        "2",
        # reflection passes built from the model's own attempts at 3 training tasks, 2 SFT steps
        "--reflection_steps",
        "2",
        "--reflection_tasks",
        "3",
        # then 1 GRPO step on the reflection prompts of those attempts, rewarded by ReflectionReward
        "--reflection_rl_steps",
        "1",
        # two generated ToM stories from an unseen seed join the held-out evaluation
        "--heldout_tom",
        "2",
        "--max_new_tokens",
        "12",
        "--max_steps",
        "3",
        "--per_device_train_batch_size",
        "2",
        "--logging_steps",
        "1",
        "--bootstrap_samples",
        "50",
        "--disable_tqdm",
        "true",
        "--critic_steps",
        "2",
        # introspection supervision: 2 more SFT steps on claims relabelled from the model's attention
        "--introspection_supervision_steps",
        "2",
        # the RL stage under the training cadence: chunks of 1 step, then 2 after two good ones
        "--rl_steps",
        "2",
        "--rl_chunk_steps",
        "1",
        "--rl_num_generations",
        "2",
        "--rl_max_completion_length",
        "8",
        "--rl_validation_tasks",
        "2",
        "--rl_thresholds",
        "evaluator=0.0",
        "--rl_abort_below",
        "",
    ]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *tiny], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]

    table = (out / "table.md").read_text().splitlines()
    assert table[0] == "| score | meta before | meta after | no_meta before | no_meta after |"
    assert [line.split(" | ")[0].lstrip("| ") for line in table[2:]] == ROW_NAMES
    assert all(line.count("|") == 6 for line in table)

    results = json.loads((out / "results.json").read_text())
    assert results["num_eval"] == 4 and len(results["eval_task_ids"]) == 4
    assert [i.startswith("theory_of_mind-gen-10007-") for i in results["eval_task_ids"]] == [False] * 2 + [True] * 2
    assert results["settings"]["preset"] == "cpu" and results["settings"]["max_new_tokens"] == 12
    assert set(results["arms"]) == {"meta", "no_meta"}
    for arm in results["arms"].values():
        for when in ("before", "after"):
            for name in [*SCORE_NAMES, "overall", "reports_with_focus_claims"]:
                cell = arm[when][name]
                assert cell["n"] == 4 and 0.0 <= cell["low"] <= cell["mean"] <= cell["high"] <= 1.0, (name, cell)
            assert 1 <= arm["mean_new_tokens"][when] <= 12
        losses = [loss for _, loss in arm["train_loss"]]
        assert len(losses) == 3 + 2 and all(math.isfinite(loss) and loss > 0 for loss in losses)
        assert [r["task_id"] for r in arm["reports_after"]] == results["eval_task_ids"]
        # the self-critic learned the evaluator's verdicts of this arm's reports: one task's two reports
        # for training, the other's held out
        critic = arm["critic"]
        assert critic["label"] == "overall" and critic["n_train"] == 4 and critic["n_eval"] == 4
        assert len(critic["train_loss"]) == 2 and all(math.isfinite(x) for x in critic["train_loss"])
        assert 0.0 <= critic["mse"] <= 1.0 and 0.0 <= critic["baseline_mse"] <= 1.0
        # a 3-step model writes no Step 1 yet: its whole first report is drawn instead
        heatmap = out / arm["heatmap"]["file"]
        assert heatmap.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name, arm in results["arms"].items():
        assert arm["reflection"]["tasks"] == 3 and 0 <= arm["reflection"]["first_attempts_failed"] <= 3
        assert arm["reflection"]["steps"] == 2 and all(math.isfinite(x) for x in arm["reflection"]["train_loss"])
        reflection_rl = arm["reflection_rl"]
        assert reflection_rl["steps"] == 1 and reflection_rl["prompts"] + reflection_rl["prompts_too_long"] == 3
        assert len(reflection_rl["reward_curve"]) == 1 and -1.0 <= reflection_rl["reward_curve"][0] <= 1.0
        assert arm["rl"]["steps"] == 2 and arm["rl"]["abort_reason"] is None
        assert [d["action"] for d in arm["rl"]["decisions"]] == ["hold", "extend"]
        logged = [json.loads(line) for line in (out / name / "rl" / "progress.jsonl").read_text().splitlines()]
        assert [(d["step"], d["next_chunk_steps"]) for d in logged] == [(1, 1), (2, 2)]
        assert set(logged[0]["scores"]) == {"evaluator", "validator"}
    # the seed's criteria side by side, paired by task: both ToM stories count for the ToM rows
    goals = {row["criterion"]: row for row in results["goals"]}
    assert list(goals) == [name for name, *_ in GOALS]
    assert goals["tom_accuracy"]["n"] >= 2 and goals["plan_monitor_coverage"]["n"] == 4
    assert all(row["p"] is None or 0.0 < row["p"] <= 1.0 for row in goals.values())
    assert (out / "goals.md").read_text().splitlines()[0].startswith("| criterion | goal | with module |")
    assert (out / "train_loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the two arms really differ: only one has the meta-attention module
    for arm, expected in (("meta", True), ("no_meta", False)):
        config = json.loads((out / arm / "config.json").read_text())
        assert config["use_meta_attention"] is expected
    assert not list(out.glob(".tmp-*"))


@pytest.mark.slow
def test_arms_run_in_separate_invocations_and_are_compared(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "OMP_NUM_THREADS": "1"}
    tiny = ["--preset", "cpu", "--output_dir", str(out), "--n_embd", "32", "--n_layer", "1", "--n_head", "2"]
    tiny += ["--n_positions", "256", "--vocab_size", "300", "--generated_per_category", "2", "--max_eval_tasks"]
    tiny += ["2", "--max_new_tokens", "8", "--max_steps", "2", "--per_device_train_batch_size", "2"]
    tiny += ["--critic_steps", "0", "--reports_before", "false", "--disable_tqdm", "true"]

    def run(*extra):
        return subprocess.run(
            [sys.executable, str(SCRIPT), *tiny, *extra], cwd=tmp_path, env=env, capture_output=True, text=True
        )

    first = run("--arms", "meta")
    assert first.returncode == 0, first.stderr[-3000:]
    assert not (out / "goals.md").exists()
    second = run("--arms", "no_meta")
    assert second.returncode == 0, second.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert set(results["arms"]) == {"meta", "no_meta"} and len(results["goals"]) == len(GOALS)
    assert (out / "goals.md").exists()
    assert results["arms"]["meta"]["before"]["overall"]["n"] == 0  # --reports_before false
    other = run("--arms", "no_meta", "--max_steps", "3")
    assert other.returncode != 0 and "trained under other settings" in other.stderr
