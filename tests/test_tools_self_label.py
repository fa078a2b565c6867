"""Toolformer-style self-labelling keeps a call whose result helps the LM and drops one that does not."""

import random

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from hf_reason.data import build_tokenizer
from hf_reason.tools import (
    CandidateCall,
    ToolRegistry,
    arithmetic_candidates,
    calculator_tool,
    format_tool_call,
    self_label,
    self_labelled_dataset,
)


def _with_call(a, b):
    return f"{format_tool_call('calculator', {'expression': f'{a}*{b}'})}\nResult: {a * b}\nSo {a}*{b} = {a * b}\n"


pytestmark = pytest.mark.slow  # the fixture trains a tiny LM for 300 steps


@pytest.fixture(scope="module")
def trained():
    """A tiny GPT-2 that learned to copy a calculator result into the line after it (it cannot multiply)."""
    tokenizer = build_tokenizer(vocab_size=260, texts=["0123456789"])
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=96, n_embd=64, n_layer=2, n_head=4)
    model = GPT2LMHeadModel(config)
    rng = random.Random(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(300):
        batch = [_with_call(rng.randint(32, 99), rng.randint(32, 99)) for _ in range(32)]  # 4-digit products
        ids = torch.tensor([tokenizer(t, add_special_tokens=False)["input_ids"] for t in batch])
        loss = model(input_ids=ids, labels=ids).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), tokenizer


def test_arithmetic_candidates_sit_before_their_line():
    text = "Plan: multiply.\nStep 1: 37 * 41 = 1517.\nStep 2: 1517 - 17 = 1500."
    found = arithmetic_candidates(text)
    assert [(c.line_start, c.arguments["expression"]) for c in found] == [(16, "37*41"), (40, "1517-17")]


def test_keeps_the_call_that_helps_and_drops_the_one_that_does_not(trained):
    model, tokenizer = trained
    text = "So 37*41 = 1517\n"

    def candidates(text):
        return [
            CandidateCall(0, "calculator", {"expression": "37*41"}),
            CandidateCall(0, "calculator", {"expression": "2+2"}),
        ]

    registry = ToolRegistry([calculator_tool()])
    annotated, decisions = self_label(model, tokenizer, [text], registry, candidates, threshold=0.2)
    helpful, useless = decisions[0]
    assert helpful.kept and helpful.result == "1517" and helpful.gain > 0.2
    assert not useless.kept and useless.gain < 0.2
    assert annotated == [_with_call(37, 41)]
    dataset = self_labelled_dataset(annotated, eos_token=tokenizer.eos_token)
    assert dataset["text"] == [_with_call(37, 41) + tokenizer.eos_token]


def test_a_call_that_errors_is_never_kept(trained):
    model, tokenizer = trained
    registry = ToolRegistry([calculator_tool()])
    annotated, decisions = self_label(
        model, tokenizer, ["So 1/0 = x\n"], registry, lambda t: [CandidateCall(0, "calculator", {"expression": "1/0"})]
    )
    assert annotated == ["So 1/0 = x\n"] and not decisions[0][0].kept
    assert decisions[0][0].result.startswith("error: ArithmeticExpressionError: division by zero")


def test_sft_with_trl_on_the_self_labelled_data_lowers_its_loss(trained, tmp_path):
    import copy

    from trl import SFTConfig, SFTTrainer

    model, tokenizer = trained
    model = copy.deepcopy(model).train()  # the fixture's model stays as it is for the other tests
    registry = ToolRegistry([calculator_tool()])
    texts = ["So 37*41 = 1517\n", "So 52*63 = 3276\n", "So 44*71 = 3124\n"]
    annotated, decisions = self_label(model, tokenizer, texts, registry, threshold=0.2)
    assert all(d[0].kept for d in decisions) and annotated == [
        _with_call(37, 41),
        _with_call(52, 63),
        _with_call(44, 71),
    ]
    dataset = self_labelled_dataset(annotated, eos_token=tokenizer.eos_token)

    def loss():
        ids = torch.tensor([tokenizer(t, add_special_tokens=False)["input_ids"] for t in dataset["text"]])
        with torch.no_grad():
            return model(input_ids=ids, labels=ids).loss.item()

    before = loss()
    args = SFTConfig(
        output_dir=str(tmp_path),
        max_steps=10,
        per_device_train_batch_size=3,
        learning_rate=1e-3,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
    )
    SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer).train()
    model.eval()
    assert loss() < before
