"""bench/reflection.py: held-out tasks exclude the training prompts; the tiny mode runs end to end."""

import importlib.util
import json

import pytest
from conftest import REPO_ROOT


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_reflection", REPO_ROOT / "bench" / "reflection.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_held_out_tasks_never_repeat_a_training_prompt(bench):
    from hf_reason.data.curated_tasks import generated_entries

    tasks = bench.held_out_tasks(["math", "theory_of_mind"], 20, seed=1000, training_seed=0, training_per_category=60)
    training = {e["prompt"] for c in ("math", "theory_of_mind") for e in generated_entries(c, 60, seed=0)}
    prompts = [t["prompt"] for t in tasks]
    assert len(prompts) == len(set(prompts)) == 40 and not set(prompts) & training


@pytest.mark.slow
def test_tiny_mode_writes_the_paired_summary_and_the_memory(bench, tmp_path):
    summary = bench.main(["--tiny", "--output_dir", str(tmp_path), "--categories", "math"])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["tasks"] == summary["tasks"] == 3
    assert sum(saved["outcomes"].values()) == 3  # one reflection pass per task
    assert saved["extra_passes_from_the_vote"] == 0  # no vote asked for
    records = [json.loads(line) for line in (tmp_path / "memory" / "memory-rank0.jsonl").read_text().splitlines()]
    assert len(records) == 6  # both visits stored their reflections


@pytest.mark.slow
def test_a_split_vote_adds_a_reflection_pass(bench, tmp_path):
    # the random tiny model writes no Answer line in its 16 tokens: "no answer" is no agreement (0.0),
    # so the sampled vote adds a pass to every task
    argv = ["--tiny", "--output_dir", str(tmp_path), "--categories", "math", "--votes", "3", "--temperature", "5"]
    summary = bench.main(argv + ["--agreement", "1.0"])
    assert summary["extra_passes_from_the_vote"] == 3 and sum(summary["outcomes"].values()) == 6
