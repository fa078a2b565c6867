"""examples/instruction_pipeline.py: base -> SFT -> DPO on the instruction set, the three evaluated on held-out
prompts after the sentinel check, and a complete run that resumes without retraining."""

import importlib.util
import json
from pathlib import Path

import pytest

from hf_reason.data.instructions import generate_instruction_tasks, unconstrained_example


ROOT = Path(__file__).resolve().parents[1]


def test_the_unconstrained_example_is_grounded_and_names_no_constraint():
    row = generate_instruction_tasks(1, seed=3)[0]
    facts = json.loads(row["facts"])
    prompt, response = unconstrained_example(row["object"], facts, seed=1)
    sheet = row["prompt"].split(" (", 1)[1].split(").", 1)[0]
    assert prompt == f"Describe the {row['object']} using only these facts ({sheet}).\n"
    assert facts["town"] in response and f"{facts['age']} years old" in response and facts["colour"] in response


@pytest.mark.slow
def test_quick_run_evaluates_base_sft_and_dpo_on_held_out_prompts_and_resumes(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "instruction_pipeline", ROOT / "examples" / "instruction_pipeline.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "run"
    report = module.main(["--output_dir", str(out), "--quick", "--pairs", "both"])
    assert set(report["systems"]) == {"base", "sft", "dpo"}
    assert set(report["comparisons"]) == {"base->sft", "sft->dpo"}
    held_out = {r["object"] for r in generate_instruction_tasks(12, "held_out", seed=4)}
    trained = {r["object"] for r in generate_instruction_tasks(16, "train", seed=2)}
    assert held_out and not held_out & trained
    for step in report["comparisons"].values():
        assert 0.0 <= step["prompt_strict"]["p"] <= step["p_bh"] <= 1.0
        assert step["worse_types"] == [t for t, v in step["per_type"].items() if v["worse"]]
    assert set(report["goal"]) == {"base_to_sft_significant", "sft_to_dpo_significant", "no_type_where_dpo_is_worse"}
    assert all(len(outputs) == 4 for outputs in report["sentinel_outputs"].values())
    # both kinds of pairs: the generated ones for every pair prompt, plus best-of-N pairs where they exist
    assert json.loads((out / "pairs" / "done.json").read_text())["pairs"] >= 8
    answers = json.loads((out / "answers.json").read_text())
    assert all(len(answers[name]) == 12 for name in ("base", "sft", "dpo"))

    stamps = {s: (out / s / "done.json").stat().st_mtime_ns for s in ("base", "sft", "dpo")}
    assert module.main(["--output_dir", str(out), "--quick", "--pairs", "both"]) == json.loads(
        (out / "eval.json").read_text()
    )
    assert stamps == {s: (out / s / "done.json").stat().st_mtime_ns for s in ("base", "sft", "dpo")}
