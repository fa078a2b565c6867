"""Value-head fine-tuning from search outcomes on a tiny CRSM with a scripted outcome."""

import pytest
import torch
from grpo_testing import tiny_crsm

from hf_reason.data import build_tokenizer
from hf_reason.reasoning import ReasoningTask, prefix_values, train_value_from_search


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(vocab_size=300)


def _task(outcome: bool) -> ReasoningTask:
    return ReasoningTask(
        name="scripted",
        extract_answer=lambda prompt, completion: completion,
        is_correct=lambda prompt, completion, reference: outcome,
        is_final_step=lambda step: False,
    )


def _prompt_value(model, tokenizer, prompt) -> float:
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        return float(prefix_values(model, ids, torch.empty((1, 0), dtype=torch.long))[0, 0])


@pytest.mark.parametrize("outcome", [True, False])
def test_value_moves_to_the_search_outcome_and_only_the_value_learns(tokenizer, outcome):
    model = tiny_crsm(tokenizer)
    last = [m for m in model.value_head.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        # Start the value at the opposite of the outcome it must learn.
        last.weight.zero_()
        last.bias.fill_(1.0 - float(outcome))
    prompts = ["Q: 3 + 4 = ?\nA:", "Q: 7 * 2 = ?\nA:"]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    start = _prompt_value(model, tokenizer, prompts[0])
    history = train_value_from_search(
        model,
        tokenizer,
        prompts,
        _task(outcome),
        rounds=3,
        samples_per_problem=1,
        max_new_tokens=4,
        learning_rate=5e-2,
        deliberation={"num_simulations": 2},
    )
    assert history["solve_rate"] == [float(outcome)] * 3
    assert len(history["loss"]) == 3 * len(prompts)
    end = _prompt_value(model, tokenizer, prompts[0])
    target = float(outcome)
    assert abs(end - target) < abs(start - target) - 0.2, (start, end)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(n.startswith(("value_head.", "backbone.aggregator.")) for n in changed), changed
    assert all(p.requires_grad for p in model.parameters()) and not model.training


def test_value_training_refuses_a_model_without_a_value_head(tokenizer):
    from grpo_testing import tiny_gpt2

    with pytest.raises(ValueError, match="value head"):
        train_value_from_search(tiny_gpt2(tokenizer), tokenizer, ["Q"], _task(True))
