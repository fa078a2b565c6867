"""solve() on the ONNX Runtime wrappers: the same answers, scores and costs as the PyTorch models they export."""

import pytest
import torch
from grpo_testing import tiny_crsm, tiny_meta_attention

from hf_reason.data import build_tokenizer
from hf_reason.export import ORTCRSMForCausalLM, ORTMetaAttentionForCausalLM, export_pretrained
from hf_reason.reasoning import ReasoningTask, ValueHeadScorer, solve


PROMPTS = ["Q: 3 + 4 * 2 = ?\nA:", "Q: 12 * 3 - 5 = ?\nA:"]
TASK = ReasoningTask(
    name="echo",
    extract_answer=lambda prompt, completion: completion,
    is_correct=lambda prompt, completion, reference: False,
    is_final_step=lambda step: False,
)
SEARCH = dict(max_step_tokens=3, max_steps=3, max_new_tokens=9)


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(vocab_size=300)


@pytest.fixture(scope="module")
def exported(tokenizer, tmp_path_factory):
    pairs = {}
    for name, build, wrapper, options in (
        ("crsm", tiny_crsm, ORTCRSMForCausalLM, {"crsm_prefill_length": 8}),
        ("meta_attention", tiny_meta_attention, ORTMetaAttentionForCausalLM, {}),
    ):
        model = build(tokenizer)
        out = tmp_path_factory.mktemp(name)
        export_pretrained(model, out, precision="fp32", progress=False, **options)
        pairs[name] = (model, wrapper.from_pretrained(out))
    return pairs


def _same(a, b):
    assert [r.completion for r in a] == [r.completion for r in b]
    assert [r.cost["generated_tokens"] for r in a] == [r.cost["generated_tokens"] for r in b]
    assert [r.cost["model_calls"] for r in a] == [r.cost["model_calls"] for r in b]


@pytest.mark.parametrize("family", ["crsm", "meta_attention"])
@pytest.mark.parametrize("method", ["greedy", "self_consistency", "mcts"])
def test_step_methods_on_onnx_runtime_match_pytorch(tokenizer, exported, family, method):
    model, ort_model = exported[family]
    options = dict(SEARCH, num_samples=3, num_simulations=3, expansions=2)
    _same(
        solve(model, tokenizer, PROMPTS, method, task=TASK, **options),
        solve(ort_model, tokenizer, PROMPTS, method, task=TASK, **options),
    )


def test_value_head_scorer_and_token_mcts_on_onnx_runtime_match_pytorch(tokenizer, exported):
    model, ort_model = exported["crsm"]
    steps = [[], [" 1 +"], [" 1 +", " 2"]]
    torch.testing.assert_close(
        torch.tensor(ValueHeadScorer(ort_model, tokenizer)(PROMPTS[:1] * 3, steps)),
        torch.tensor(ValueHeadScorer(model, tokenizer)(PROMPTS[:1] * 3, steps)),
        rtol=0,
        atol=1e-4,
    )
    options = dict(max_new_tokens=5, deliberation={"num_simulations": 3})
    _same(
        solve(model, tokenizer, PROMPTS, "token_mcts", task=TASK, **options),
        solve(ort_model, tokenizer, PROMPTS, "token_mcts", task=TASK, **options),
    )
    scored = solve(
        ort_model, tokenizer, PROMPTS, "beam", task=TASK, scorer=ValueHeadScorer(ort_model, tokenizer), **SEARCH
    )
    assert all(r.cost["scorer_calls"] > 0 for r in scored)
