"""bench/tool_calculator.py: the forced tool result carries no loss, and the pipeline runs end to end."""

import importlib.util
import json

import pytest
from conftest import REPO_ROOT


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_tool_calculator", REPO_ROOT / "bench" / "tool_calculator.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_tool_result_is_masked_out_of_the_labels_and_the_rest_is_learned(bench):
    from hf_reason.data import build_tokenizer

    tokenizer = build_tokenizer(vocab_size=260, texts=["0123456789"])
    row = bench.encode(tokenizer, 4213, 512, tool=True)
    learned = tokenizer.decode([t for t, label in zip(row["input_ids"], row["labels"]) if label != -100])
    forced = tokenizer.decode([t for t, label in zip(row["input_ids"], row["labels"]) if label == -100])
    assert learned == 'Tool: calculator({"expression": "4213*512"})Answer: 2157056<|eos|>'
    assert forced == "Q: 4213*512=\n\nResult: 2157056\n"
    assert bench.answer_of("Tool: x\nResult: 5\nAnswer: 2157056") == 2157056
    held_out = bench.problems(50, seed=1, exclude=frozenset(bench.problems(50, seed=0)))
    assert not set(held_out) & set(bench.problems(50, seed=0))


def test_a_few_steps_run_end_to_end_and_write_the_summary(bench, tmp_path):
    argv = ["--output_dir", str(tmp_path), "--train_size", "32", "--eval_size", "4", "--steps", "2"]
    argv += ["--batch_size", "8", "--width", "16", "--layers", "1", "--heads", "2", "--save_steps", "2"]
    argv += ["--max_new_tokens", "8"]
    summary = bench.main(argv)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["held_out_problems"] == 4 == summary["held_out_problems"]
    assert set(saved["goals"]) == {
        "exact_at_least_0.95",
        "better_than_no_tool_p_below_0.01",
        "precision_at_least_0.95",
    }
    assert (tmp_path / "with_tool" / "checkpoint-2" / "trainer_state.json").exists()


def test_the_arms_run_in_separate_invocations_and_compare_once_both_are_there(bench, tmp_path):
    argv = ["--output_dir", str(tmp_path), "--train_size", "16", "--eval_size", "3", "--steps", "1"]
    argv += ["--batch_size", "4", "--width", "16", "--layers", "1", "--heads", "2", "--max_new_tokens", "6"]
    first = bench.main([*argv, "--arms", "with_tool"])
    assert first["arm"] == "with_tool" and len(first["correct"]) == 3
    assert not (tmp_path / "results.json").exists()
    written = (tmp_path / "with_tool" / "evaluation.json").stat().st_mtime_ns
    summary = bench.main([*argv, "--arms", "without_tool"])
    assert summary["held_out_problems"] == 3 and (tmp_path / "results.json").exists()
    # the with-tool arm was read back, not retrained
    assert (tmp_path / "with_tool" / "evaluation.json").stat().st_mtime_ns == written
    assert summary["with_tool_exact"] == sum(first["correct"]) / 3
    with pytest.raises(ValueError, match="made under other settings"):
        bench.main([*argv[:-1], "7", "--arms", "without_tool"])
