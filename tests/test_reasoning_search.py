"""solve(): each method on tiny random models with scripted scorers whose best path is known."""

import pytest
import torch
from grpo_testing import tiny_crsm, tiny_gpt2, tiny_mamba, tiny_meta_attention

from hf_reason.data import build_tokenizer
from hf_reason.reasoning import LMStepper, ReasoningTask, RewardFunctionScorer, SearchConfig, StepScorer, solve


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(vocab_size=300)


def _even(step: str) -> bool:
    return bool(step) and ord(step[0]) % 2 == 0


# A step is one token (max_step_tokens=1) and a solution three steps; it is right when every step's first
# character has an even code point. The scripted scorer knows the rule: 1 while every step so far is even.
PARITY_TASK = ReasoningTask(
    name="parity",
    extract_answer=lambda prompt, completion: completion,
    is_correct=lambda prompt, completion, reference: (
        len(completion.split("\x00")) == 3 and all(_even(s) for s in completion.split("\x00"))
    ),
    is_final_step=lambda step: False,
)


class ParityScorer:
    def __init__(self):
        self.calls = 0

    def __call__(self, prompts, steps):
        self.calls += 1
        return [float(all(_even(s) for s in path)) for path in steps]


SEARCH = dict(max_step_tokens=1, max_steps=3, max_new_tokens=3, step_delimiter="\x00")


def test_scorer_protocol_is_a_plain_batched_callable():
    assert isinstance(ParityScorer(), StepScorer)
    assert ParityScorer()(["p", "p"], [["b"], ["b", "a"]]) == [1.0, 0.0]


@pytest.mark.parametrize("family", [tiny_gpt2, tiny_crsm])
@pytest.mark.parametrize("method", ["beam", "mcts"])
def test_search_finds_the_path_greedy_misses(tokenizer, family, method):
    model = family(tokenizer, seed=1)
    prompts = ["Q one", "Q two", "Q three"]
    greedy = solve(model, tokenizer, prompts, "greedy", task=PARITY_TASK, references=[None] * 3, **SEARCH)
    assert sum(r.correct for r in greedy) <= 1  # the random model's argmax path is not the known best one
    found = solve(
        model,
        tokenizer,
        prompts,
        method,
        task=PARITY_TASK,
        scorer=ParityScorer(),
        references=[None] * 3,
        **SEARCH,
        expansions=6,
        num_simulations=24,
        beam_width=2,
    )
    assert all(r.correct for r in found) and all(r.score == 1.0 for r in found)
    assert all(r.cost["generated_tokens"] > greedy[0].cost["generated_tokens"] for r in found)
    assert all(r.cost["scorer_calls"] >= 1 and r.trace for r in found)


def test_a_trl_reward_function_and_the_self_critic_plug_in_as_step_scorers(tokenizer):
    def parity_reward(prompts, completions, **kwargs):
        assert kwargs["reference"] == ["r-" + p for p in prompts]
        return [2.0 * all(_even(s) for s in c.split("\x00")) - 0.5 for c in completions]  # clamped to [0, 1]

    prompts = ["Q one", "Q two"]
    scorer = RewardFunctionScorer(parity_reward, "\x00", {"reference": {p: "r-" + p for p in prompts}})
    assert scorer(prompts, [["b", "d"], ["b", "a"]]) == [1.0, 0.0]
    found = solve(
        tiny_gpt2(tokenizer, seed=1),
        tokenizer,
        prompts,
        "beam",
        task=PARITY_TASK,
        scorer=scorer,
        references=[None] * 2,
        **SEARCH,
        expansions=6,
    )
    assert all(r.correct for r in found)

    from hf_reason import MetaAttentionForSequenceScoring
    from hf_reason.evaluation.self_critic import SelfCriticReward

    torch.manual_seed(0)
    config = tiny_meta_attention(tokenizer).config
    critic = SelfCriticReward(MetaAttentionForSequenceScoring(config).eval(), tokenizer)
    steps = [["1 + 2 = 3"], ["1 + 2 = 3", "3 * 4 = 12"]]
    expected = critic(["Q: 12?\n"] * 2, ["1 + 2 = 3", "1 + 2 = 3\n3 * 4 = 12"])
    assert RewardFunctionScorer(critic)(["Q: 12?\n"] * 2, steps) == pytest.approx(expected)


def test_self_consistency_majority_and_weighted_votes(tokenizer):
    model = tiny_gpt2(tokenizer, seed=2)
    task = ReasoningTask(
        name="first-parity",
        extract_answer=lambda p, c: ("even" if _even(c) else "odd") if c else None,
        is_correct=lambda p, c, r: bool(c) and _even(c) == (r == "even"),
        is_final_step=lambda step: True,
    )
    plain = solve(model, tokenizer, ["Q"], "self_consistency", task=task, num_samples=9, **SEARCH)[0]
    votes = plain.votes["majority"]
    assert sum(votes.values()) == 9 and plain.answer == max(votes, key=votes.get)
    assert plain.agreement == votes[plain.answer] / 9
    # A scorer that only trusts odd answers outweighs any even majority.
    odd_only = lambda prompts, steps: [0.0 if _even(s[0]) else 1.0 for s in steps]  # noqa: E731
    weighted = solve(model, tokenizer, ["Q"], "self_consistency", task=task, scorer=odd_only, num_samples=9, **SEARCH)
    assert weighted[0].answer == "odd" and weighted[0].votes["weighted"]["even"] == 0.0


@pytest.mark.parametrize("method", ["greedy", "self_consistency", "beam", "mcts", "token_mcts"])
def test_token_budget_caps_generated_tokens(tokenizer, method):
    # The tiny CRSM, under this seed, does not emit EOS within 20 tokens: the budget is what stops it.
    model = tiny_crsm(tokenizer) if method == "token_mcts" else tiny_gpt2(tokenizer)
    results = solve(
        model,
        tokenizer,
        ["Q a", "Q b"],
        method,
        task=PARITY_TASK,
        scorer=ParityScorer(),
        token_budget=7,
        max_step_tokens=4,
        max_steps=5,
        max_new_tokens=20,
        num_samples=8,
        num_simulations=50,
        expansions=3,
        deliberation={"num_simulations": 2},
    )
    for r in results:
        assert 1 <= r.cost["generated_tokens"] <= 7
        assert r.cost["model_calls"] >= 1 and r.cost["seconds"] > 0


@pytest.mark.parametrize("family", [tiny_gpt2, tiny_meta_attention, tiny_crsm, tiny_mamba])
def test_branching_from_a_cached_state_gives_the_logits_of_recomputation(tokenizer, family):
    model = family(tokenizer, seed=3)
    stepper = LMStepper(model, tokenizer, max_step_tokens=5)
    root = stepper.prefill("Numbers: 1 2\n")
    branches = [stepper.sample_step(root, 1.0, generator=torch.Generator().manual_seed(s)) for s in range(3)]
    assert len({tuple(b.token_ids) for b in branches}) > 1
    prompt_ids = tokenizer("Numbers: 1 2\n").input_ids
    for branch in branches:
        deeper = stepper.advance(branch.state, [5, 6])
        full = torch.tensor([prompt_ids + branch.token_ids + [5, 6]])
        with torch.no_grad():
            expected = model(input_ids=full).logits[0, -1]
        torch.testing.assert_close(deeper.logits, expected, atol=1e-4, rtol=1e-4)
    # The root was never advanced in place: its logits still match the prompt alone.
    with torch.no_grad():
        torch.testing.assert_close(root.logits, model(input_ids=torch.tensor([prompt_ids])).logits[0, -1])


def test_config_errors_name_the_field(tokenizer):
    with pytest.raises(ValueError, match="`temperature`"):
        SearchConfig(temperature=0)
    with pytest.raises(ValueError, match="`token_budget`"):
        SearchConfig(token_budget=0)
    with pytest.raises(ValueError, match="`method`"):
        solve(tiny_gpt2(tokenizer), tokenizer, ["Q"], "sampling", task=PARITY_TASK)
    with pytest.raises(ValueError, match="CRSM"):
        solve(tiny_gpt2(tokenizer), tokenizer, ["Q"], "token_mcts", task=PARITY_TASK)


def test_sweep_writes_the_best_mcts_setting_into_the_saved_generation_config(tokenizer, tmp_path):
    pytest.importorskip("optuna")
    from hf_reason import CRSMForCausalLM
    from hf_reason.data.countdown import generate_countdown
    from hf_reason.reasoning import countdown_task, sweep_deliberation

    model = tiny_crsm(tokenizer)
    rows = generate_countdown(2, seed=0)
    out = sweep_deliberation(
        model,
        tokenizer,
        rows["prompt"],
        rows["answer"],
        countdown_task(),
        n_trials=2,
        max_simulations=2,
        max_new_tokens=4,
    )
    assert len(out["trials"]) == 2 and 1 <= out["best"]["num_simulations"] <= 2
    model.save_pretrained(tmp_path)
    loaded = CRSMForCausalLM.from_pretrained(tmp_path)
    saved = loaded.generation_config.deliberation
    assert saved == {k: v for k, v in out["best"].items() if k != "delta_damping"}
    result = solve(loaded, tokenizer, rows["prompt"][:1], "token_mcts", task=countdown_task(), max_new_tokens=4)[0]
    assert result.cost["model_calls"] == 1 + result.cost["generated_tokens"] * saved["num_simulations"]
