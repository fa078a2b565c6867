"""Tool calls inside generation (every LM family) and inside GRPO rollouts."""

import functools
import re

import pytest
import torch
from grpo_testing import tiny_crsm, tiny_meta_attention

from hf_reason.data import build_tokenizer
from hf_reason.tools import ToolCallProcessor, ToolRegistry, calculator_tool, find_closed_call, generate_with_tools


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(vocab_size=320)


class ScriptedCaller:
    """A logits processor that plays a tool-using model: it writes `script[row]` (a call, or nothing),
    then, once a result line is in the text, ``Answer: <the result>`` and EOS; then the model's own tokens
    for `free_steps` steps are left alone (so the cache's continuation can be compared)."""

    def __init__(self, tokenizer, script, answer=True):
        self.tokenizer, self.script, self.answer = tokenizer, script, answer
        self.start = None

    def _force(self, scores, row, text, target):
        if not target.startswith(text):
            return False
        if text == target:
            token = self.tokenizer.eos_token_id
        else:
            token = self.tokenizer(target[len(text) :], add_special_tokens=False)["input_ids"][0]
        scores[row] = float("-inf")
        scores[row, token] = 0.0
        return True

    def __call__(self, input_ids, scores):
        if self.start is None:
            self.start = input_ids.shape[1]
        for row, call in enumerate(self.script):
            text = self.tokenizer.decode(input_ids[row, self.start :], skip_special_tokens=True)
            result = re.search(r"Result: (.*)\n", text)
            if result is None:
                self._force(scores, row, text, call)
            elif self.answer:
                self._force(scores, row, text, text[: result.end()] + f"Answer: {result.group(1)}")
        return scores


def test_find_closed_call_waits_for_the_arguments_to_close():
    assert find_closed_call('Tool: calculator({"expression": "(1+2)') is None
    assert find_closed_call('Tool: calculator({"expression": "(1+2)*3"})') == (
        43,
        'calculator({"expression": "(1+2)*3"})',
    )
    assert find_closed_call("Tool: calc(oops\nmore") == (15, "calc(oops")
    assert find_closed_call("no call here\n") is None


@pytest.mark.parametrize("family", ["meta_attention", "crsm"])
def test_scripted_calls_run_and_results_feed_the_rest_of_the_batch(tokenizer, family):
    model = {"meta_attention": tiny_meta_attention, "crsm": tiny_crsm}[family](tokenizer)
    registry = ToolRegistry([calculator_tool()])
    script = [
        'Tool: calculator({"expression": "4213 * 512"})',
        'Tool: calc({"expression": "1"})',
        'Tool: calculator({"expression": "import os"})',
    ]
    prompts = ["Q: 4213 * 512?\n", "Q: 1?\n", "Q: os?\n"]
    outputs = generate_with_tools(
        model,
        tokenizer,
        prompts,
        registry,
        max_result_tokens=20,
        logits_processor=[ScriptedCaller(tokenizer, script)],
        max_new_tokens=90,
        do_sample=False,
    )
    assert outputs[0].text == script[0] + "\nResult: 2157056\nAnswer: 2157056"
    # errors reach the model as text (cut at max_result_tokens), and the rows go on to their answers
    assert outputs[1].text.startswith(script[1] + "\nResult: error: unkno\nAnswer: error: unkno")
    assert "unknown tool 'calc'" in outputs[1].results[0].error
    assert outputs[2].text.startswith(script[2] + "\nResult: error: ")
    assert outputs[2].results[0].error.startswith("ArithmeticExpressionError")
    for out in outputs:
        assert len(out.results) == 1 and out.completion_ids[-1] == tokenizer.eos_token_id
        forced = tokenizer.decode([t for t, m in zip(out.completion_ids, out.tool_mask) if m == 0])
        assert forced.startswith("\nResult: ") and forced.endswith("\n")


@pytest.mark.parametrize("family", ["meta_attention", "crsm"])
def test_generation_after_a_spliced_result_continues_the_cache_exactly(tokenizer, family):
    """After the forced result the model's own greedy tokens equal a fresh prefill of the same text."""
    model = {"meta_attention": tiny_meta_attention, "crsm": tiny_crsm}[family](tokenizer)
    registry = ToolRegistry([calculator_tool()])
    prompts = ["Q: 12 * 3 = ?\nA: ", "Q: a longer prompt, 7 + 5 = ?\nA: "]
    script = ['Tool: calculator({"expression": "12 * 3"})', 'Tool: calculator({"expression": "7 + 5"})']
    outputs = generate_with_tools(
        model,
        tokenizer,
        prompts,
        registry,
        logits_processor=[ScriptedCaller(tokenizer, script, answer=False)],
        max_new_tokens=60,
        do_sample=False,
    )
    for prompt, out in zip(prompts, outputs):
        last_forced = max(i for i, m in enumerate(out.tool_mask) if m == 0)
        head, tail = out.completion_ids[: last_forced + 1], out.completion_ids[last_forced + 1 :]
        assert len(tail) >= 5
        prefix = tokenizer(prompt, add_special_tokens=False)["input_ids"] + head
        fresh = model.generate(
            torch.tensor([prefix]),
            attention_mask=torch.ones(1, len(prefix), dtype=torch.long),
            max_new_tokens=len(tail),
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )[0, len(prefix) :].tolist()
        assert fresh[: len(tail)] == tail


def test_call_limit_answers_further_calls_with_an_error(tokenizer):
    model = tiny_meta_attention(tokenizer)
    processor = ToolCallProcessor(tokenizer, ToolRegistry([calculator_tool()]), max_calls=0)
    script = ScriptedCaller(tokenizer, ['Tool: calculator({"expression": "1+1"})'])
    ids = tokenizer(["Q: 1+1?\nA: "], return_tensors="pt")["input_ids"]
    out = model.generate(ids, logits_processor=[script, processor], max_new_tokens=80, do_sample=False)
    assert "Result: error: call limit of 0 reached" in tokenizer.decode(out[0, ids.size(1) :])


def test_grpo_rollouts_run_tools_and_mask_the_results_out_of_the_loss(tokenizer, tmp_path):
    from grpo_testing import grpo_trainer

    from hf_reason.tools import ToolUseGRPOMixin
    from hf_reason.trainers import ReasoningGRPOConfig, ReasoningGRPOTrainer

    seen = []

    class ScriptedToolGRPO(ToolUseGRPOMixin, ReasoningGRPOTrainer):
        def rollout_processors(self):
            script = ['Tool: calculator({"expression": "2+3"})'] * 8
            return [ScriptedCaller(self._tokenizer, script), *super().rollout_processors()]

    def reward(prompts, completions, **kwargs):
        seen.extend(completions)
        return [float("Result: 5" in c) + len(c) / 100 for c in completions]

    model = tiny_meta_attention(tokenizer)
    trainer = grpo_trainer(
        functools.partial(ScriptedToolGRPO, tool_registry=ToolRegistry([calculator_tool()])),
        ReasoningGRPOConfig,
        model,
        tokenizer,
        tmp_path,
        reward_funcs=reward,
        max_completion_length=60,
    )
    batch = trainer._generate_and_score_completions([trainer.train_dataset[i] for i in range(8)])
    assert all(c.startswith('Tool: calculator({"expression": "2+3"})\nResult: 5\nAnswer: 5') for c in seen)
    mask, ids = batch["tool_mask"], batch["completion_ids"]
    for row in range(ids.size(0)):
        forced = [
            t for t, m, c in zip(ids[row].tolist(), mask[row].tolist(), batch["completion_mask"][row]) if c and not m
        ]
        assert tokenizer.decode(forced) == "\nResult: 5\n"
    trainer.train()
    assert trainer.state.global_step == 1
