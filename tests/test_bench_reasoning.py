"""bench/reasoning.py end to end in its tiny mode: trains both families, evaluates every method, writes the outputs."""

import importlib.util
import json
from pathlib import Path

from conftest import REPO_ROOT


def _bench():
    spec = importlib.util.spec_from_file_location("bench_reasoning", REPO_ROOT / "bench" / "reasoning.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_run_writes_table_plot_and_models_and_rescores_them(tmp_path):
    bench = _bench()
    out = tmp_path / "run"
    bench.main(
        [
            "--preset",
            "tiny",
            "--tasks",
            "countdown,arithmetic,planning",
            "--eval_problems",
            "2",
            "--output_dir",
            str(out),
        ]
    )
    table = json.loads((out / "table.json").read_text())
    assert (out / "accuracy_vs_compute.png").stat().st_size > 0
    methods = {(r["family"], r["task"], r["method"]) for r in table["results"]}
    assert ("crsm", "countdown", "crsm token-mcts [swept on validation]") in methods
    assert ("gpt2", "countdown", "mcts-steps 2 budget 48 [verifier+lookahead]") in methods
    assert ("gpt2", "arithmetic", "self-consistency@2") in methods
    assert ("crsm", "planning", "self-consistency@2") in methods
    for row in table["results"]:
        assert 0.0 <= row["accuracy"] <= 1.0 and row["n"] == 2 and row["cost"]["generated_tokens"] > 0
        assert row["method"] == "greedy" or 0.0 <= row["vs_greedy"]["mcnemar_p"] <= 1.0
    assert set(table["training"]) == {"crsm_value", "crsm_sweep"}
    assert "deliberation" in json.loads((out / "crsm" / "final" / "generation_config.json").read_text())
    rescored = tmp_path / "rescored"
    bench.main(
        [
            "--preset",
            "tiny",
            "--tasks",
            "countdown",
            "--eval_problems",
            "2",
            "--families",
            "gpt2",
            "--methods",
            "self_consistency,mcts",
            "--scorers",
            "verifier+lookahead",
            "--model_dir",
            str(out),
            "--output_dir",
            str(rescored),
        ]
    )
    again = json.loads((rescored / "table.json").read_text())["results"]
    first = {
        r["method"]: r["accuracy"] for r in table["results"] if r["family"] == "gpt2" and r["task"] == "countdown"
    }
    assert {r["method"] for r in again} == {
        "greedy",
        "self-consistency@2",
        "mcts-steps 2 budget 48 [verifier+lookahead]",
    }
    assert {r["method"]: r["accuracy"] for r in again} == {r["method"]: first[r["method"]] for r in again}
    assert Path(out / "gpt2" / "final" / "model.safetensors").is_file()
