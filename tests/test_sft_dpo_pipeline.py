"""examples/sft_dpo_pipeline.py: end to end, resumable, reproducible, stale stages refused, a base model's own
tokenizer, and QLoRA (4-bit) DPO."""

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from datasets import load_from_disk


ROOT = Path(__file__).resolve().parents[1]
STAGES = ["1_data", "2_sft", "3_pairs", "4_dpo", "5_eval"]
# Llama (nn.Linear layers) so that the 4-bit test can reuse the run; 120 SFT steps give confident pairs
ARGV = [
    "--family",
    "llama",
    "--max_value",
    "2",
    "--num_shots",
    "0",
    "--num_sft",
    "64",
    "--sft_steps",
    "120",
    "--sft_lr",
    "1e-2",
    "--num_pool",
    "8",
    "--num_eval",
    "8",
    "--dpo_steps",
    "2",
    "--hidden_size",
    "32",
    "--num_layers",
    "1",
    "--vocab_size",
    "300",
    "--max_new_tokens",
    "24",
    "--max_length",
    "64",
    "--batch_size",
    "8",
]


@pytest.fixture(scope="module")
def pipeline():
    spec = importlib.util.spec_from_file_location("sft_dpo_pipeline", ROOT / "examples" / "sft_dpo_pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def first_run(pipeline, tmp_path_factory):
    out = tmp_path_factory.mktemp("pipeline") / "run"
    report = pipeline.main(["--output_dir", str(out), *ARGV])
    return out, report


def _stamps(root: Path) -> dict:
    return {s: (root / s / "provenance.json").stat().st_mtime_ns for s in STAGES}


def _copy(run: Path, tmp_path: Path) -> Path:
    shutil.copytree(run, tmp_path / "run")  # copy2: modification times are kept
    return tmp_path / "run"


@pytest.mark.slow
def test_runs_end_to_end_resumes_and_reproduces_under_a_seed(pipeline, first_run, tmp_path):
    out, report = first_run
    in_git_checkout = (ROOT / ".git").exists()
    for stage in STAGES:
        record = json.loads((out / stage / "provenance.json").read_text())
        assert record["seed"] == 0 and record["config"]["sft_steps"] == 120
        if in_git_checkout:
            assert re.fullmatch(r"[0-9a-f]{40}", record["git"]["commit"]), record["git"]
    assert json.loads((out / "3_pairs" / "stats.json").read_text())["pairs"] > 0
    assert (out / "4_dpo" / "adapter_model.safetensors").is_file()
    assert report["n"] == 8 and 0 <= report["mcnemar_exact"]["p"] <= 1 and "overall" in report["tests_bh"]

    # a second run finds every stage complete and current, and redoes nothing
    stamps = _stamps(out)
    assert pipeline.main(["--output_dir", str(out), *ARGV]) == report
    assert _stamps(out) == stamps

    # a fresh folder, the same options and seed: the same pairs, adapter and evaluation
    again = tmp_path / "again"
    assert pipeline.main(["--output_dir", str(again), *ARGV]) == report
    assert (again / "5_eval" / "eval.json").read_text() == (out / "5_eval" / "eval.json").read_text()
    assert load_from_disk(again / "3_pairs" / "pairs").to_list() == load_from_disk(out / "3_pairs" / "pairs").to_list()
    assert (again / "4_dpo" / "adapter_model.safetensors").read_bytes() == (
        out / "4_dpo" / "adapter_model.safetensors"
    ).read_bytes()


@pytest.mark.slow
def test_stale_stages_are_refused_or_rebuilt(pipeline, first_run, tmp_path):
    run = _copy(first_run[0], tmp_path)
    argv = ["--output_dir", str(run), *ARGV]
    stamps = _stamps(run)
    with pytest.raises(pipeline.StaleStageError, match=r"1_data was built .*--seed 0 -> 1.*--redo_stale"):
        pipeline.main(argv + ["--seed", "1"])
    with pytest.raises(pipeline.StaleStageError, match=r"4_dpo was built .*--dpo_steps 2 -> 3"):
        pipeline.main(argv + ["--dpo_steps", "3"])
    assert _stamps(run) == stamps  # refusing changed nothing

    # --redo_stale rebuilds the changed stage, then the one built on it (its input hash no longer matches)
    pipeline.main(argv + ["--dpo_steps", "3", "--redo_stale"])
    after = _stamps(run)
    assert {s for s in STAGES if after[s] != stamps[s]} == {"4_dpo", "5_eval"}
    assert json.loads((run / "4_dpo" / "provenance.json").read_text())["config"]["dpo_steps"] == 3
    assert not any(p.name.endswith((".tmp", ".stale")) for p in run.iterdir())

    # a stage rebuilt by hand (folder deleted) makes the stages after it stale, whatever their options
    shutil.rmtree(run / "4_dpo")
    with pytest.raises(pipeline.StaleStageError, match="5_eval was built .*4_dpo was rebuilt after it"):
        pipeline.main(argv + ["--dpo_steps", "3"])


@pytest.mark.slow
def test_qlora_dpo_stage_on_a_4bit_model(pipeline, first_run, tmp_path):
    pytest.importorskip("bitsandbytes", reason="bitsandbytes is the optional `quantization` extra (and in `dev`)")
    run = _copy(first_run[0], tmp_path)
    report = pipeline.main(["--output_dir", str(run), *ARGV, "--load_in_4bit", "--redo_stale"])
    record = json.loads((run / "4_dpo" / "provenance.json").read_text())
    assert record["config"]["load_in_4bit"] is True
    assert json.loads((run / "4_dpo" / "adapter_config.json").read_text())["peft_type"] == "LORA"
    assert report["n"] == 8 and 0 <= report["mcnemar_exact"]["p"] <= 1


def test_a_base_model_trains_with_its_own_tokenizer(pipeline, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from hf_reason.data import build_tokenizer

    # a "pretrained" base: its tokenizer is trained on other text than the pipeline's, has no think tags and no pad
    # token set (as GPT-2's), and is smaller than the tokenizer the pipeline would train (--vocab_size 300)
    base_tokenizer = build_tokenizer(vocab_size=270, texts=["the quick brown fox jumps over the lazy dog"] * 20)
    base_tokenizer.pad_token = None
    base_tokenizer.save_pretrained(tmp_path / "base")
    torch.manual_seed(0)
    base = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(base_tokenizer),
            n_positions=128,
            n_embd=32,
            n_layer=1,
            n_head=2,
            eos_token_id=base_tokenizer.eos_token_id,
            bos_token_id=base_tokenizer.bos_token_id,
        )
    )
    base.save_pretrained(tmp_path / "base")

    args = pipeline.parse_args(
        [
            "--output_dir",
            str(tmp_path / "run"),
            "--model_name_or_path",
            str(tmp_path / "base"),
            "--num_sft",
            "8",
            "--num_pool",
            "2",
            "--num_eval",
            "2",
            "--num_shots",
            "0",
            "--sft_steps",
            "1",
            "--batch_size",
            "4",
            "--vocab_size",
            "300",
        ]
    )
    root = Path(args.output_dir)
    root.mkdir()
    pipeline.stage_data(args, root)
    pipeline.stage_sft(args, root)

    tokenizer = AutoTokenizer.from_pretrained(root / "2_sft")
    # every base id keeps its meaning; the added tokens come after the base vocabulary
    added = {t: len(base_tokenizer) + i for i, t in enumerate(("<think>", "</think>"))}
    assert tokenizer.get_vocab() == {**base_tokenizer.get_vocab(), **added}
    assert tokenizer.pad_token == "<|pad|>"  # in the base vocabulary, but not set as its pad token
    assert tokenizer("<think>1</think>")["input_ids"] == [
        added["<think>"],
        *base_tokenizer("1")["input_ids"],
        added["</think>"],
    ]
    assert tokenizer("the lazy dog")["input_ids"] == base_tokenizer("the lazy dog")["input_ids"]

    sft = AutoModelForCausalLM.from_pretrained(root / "2_sft")
    assert sft.get_input_embeddings().num_embeddings == len(tokenizer) == len(base_tokenizer) + 2
    assert sft.config.pad_token_id == tokenizer.pad_token_id
    record = json.loads((root / "1_data" / "provenance.json").read_text())
    assert record["tokenizer"] == str(tmp_path / "base")
