"""Reward functions on completions with known answers, called as TRL calls them."""

import pytest

from hf_reason.data.arithmetic import generate_arithmetic
from hf_reason.trainers.rewards import (
    ArithmeticAnswerReward,
    CombinedReward,
    ExactAnswerReward,
    FormatReward,
    SelfCriticRewardAdapter,
    extract_final_answer,
)


def test_arithmetic_reward_scores_the_generated_solutions_exactly():
    data = generate_arithmetic(20, seed=3)
    reward = ArithmeticAnswerReward()
    right = reward(prompts=data["prompt"], completions=data["completion"], answer=data["answer"])
    assert right == [1.0] * 20
    wrong = [c.rsplit("####", 1)[0] + f"#### {int(a) + 1}" for c, a in zip(data["completion"], data["answer"])]
    assert reward(prompts=data["prompt"], completions=wrong, answer=data["answer"]) == [0.0] * 20
    # no committed answer: no reward, even if the right number appears in the working
    assert reward(prompts=["Q"], completions=[" 4 * 2 = 8"], answer=["8"]) == [0.0]


def test_exact_answer_reward_conventions_and_conversational_completions():
    reward = ExactAnswerReward()
    completions = [
        "<think>2+2</think><answer> 4 </answer>",
        [{"role": "assistant", "content": "so the answer is 4."}],
        "#### 5",
        "I think it is 4",
        "<answer>Paris</answer>",
    ]
    assert reward(prompts=[""] * 5, completions=completions, answer=["4", "4", "4", "4", "paris"]) == [1, 1, 0, 0, 1]
    assert ExactAnswerReward(rel_tol=1e-3)(prompts=[""], completions=["<answer>3.1416</answer>"], answer=["3.14159"]) == [1.0]
    assert extract_final_answer("nothing here") is None
    with pytest.raises(ValueError, match="`answer`"):
        reward(prompts=[""], completions=["x"], solution=["1"])
    with pytest.raises(ValueError, match="rel_tol"):
        ExactAnswerReward(rel_tol=-1)


def test_format_reward_gives_partial_credit():
    reward = FormatReward()
    completions = [
        "<think>3 * 4 = 12</think> #### 12",
        "<think>3 * 4 = 12</think> twelve",
        "<think></think> #### 12",
        "#### 12",
        "<think>a</think><think>b</think><answer>1</answer>",
    ]
    assert reward(prompts=[""] * 5, completions=completions) == [1.0, 0.5, 0.0, 0.0, 0.0]


def test_combined_reward_is_a_weighted_sum():
    combined = CombinedReward([ArithmeticAnswerReward(), FormatReward()], weights=[2.0, 0.5])
    out = combined(prompts=["", ""], completions=["<think>x</think> #### 3", "#### 3"], answer=["3", "4"])
    assert out == [2.0 + 0.5, 0.0]
    assert combined.__name__ == "2*arithmetic_answer+0.5*format"
    with pytest.raises(ValueError, match="weights"):
        CombinedReward([FormatReward()], weights=[1.0, 2.0])


def test_adapters_pass_through_the_self_critic_and_the_report_evaluator():
    import torch

    from hf_reason import MetaAttentionConfig, MetaAttentionForSequenceScoring
    from hf_reason.data.text import build_tokenizer
    from hf_reason.evaluation.reports import ReportEvaluator, ReportScoreReward
    from hf_reason.evaluation.self_critic import SelfCriticReward
    from hf_reason.trainers.rewards import ReportScoreRewardAdapter

    tokenizer = build_tokenizer(vocab_size=300)
    torch.manual_seed(0)
    critic = MetaAttentionForSequenceScoring(MetaAttentionConfig(
        vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=1, n_head=2, meta_top_k=2, meta_hidden_size=16,
        meta_num_heads=2, pad_token_id=tokenizer.pad_token_id,
    )).eval()
    prompts, completions = ["Q: 1 + 1 = ?\nA:"] * 2, [" #### 2", " I am not sure"]
    adapter = SelfCriticRewardAdapter(critic, tokenizer)
    direct = SelfCriticReward(critic, tokenizer)(prompts=prompts, completions=completions)
    assert adapter(prompts=prompts, completions=completions) == direct and all(0 < v < 1 for v in direct)
    assert adapter.__name__ == "self_critic"

    reports = ["Plan: add the numbers\nAnswer: 2", "blah"]
    evaluator = ReportEvaluator()
    ours = ReportScoreRewardAdapter(evaluator)(prompts=prompts, completions=reports)
    assert ours == ReportScoreReward(evaluator)(prompts=prompts, completions=reports)
    mixed = CombinedReward([ReportScoreRewardAdapter(evaluator), adapter], weights=[1.0, 0.5])
    assert mixed(prompts=prompts, completions=reports) == pytest.approx(
        [r + 0.5 * c for r, c in zip(ours, adapter(prompts=prompts, completions=reports))]
    )
