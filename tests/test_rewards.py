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
    assert ExactAnswerReward(rel_tol=1e-3)(
        prompts=[""], completions=["<answer>3.1416</answer>"], answer=["3.14159"]
    ) == [1.0]
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
    critic = MetaAttentionForSequenceScoring(
        MetaAttentionConfig(
            vocab_size=len(tokenizer),
            n_positions=64,
            n_embd=32,
            n_layer=1,
            n_head=2,
            meta_top_k=2,
            meta_hidden_size=16,
            meta_num_heads=2,
            pad_token_id=tokenizer.pad_token_id,
        )
    ).eval()
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


def _unstack_then_build(puzzle: dict) -> list[str]:
    """A correct blocks-world plan that is usually not the shortest: everything to the table, then the goal."""
    stacks = [list(s) for s in puzzle["initial"]]
    moves = [f"move {s[i]} onto table" for s in stacks for i in range(len(s) - 1, 0, -1)]
    moves += [f"move {above} onto {below}" for s in puzzle["goal"] for below, above in zip(s, s[1:])]
    return moves


def _latest_ready_order(tasks: dict) -> list[str]:
    """A correct schedule other than the gold one: always the alphabetically last ready task."""
    done, order = set(), []
    while len(order) < len(tasks):
        ready = sorted(t for t, pre in tasks.items() if t not in done and set(pre) <= done)
        order.append(ready[-1])
        done.add(ready[-1])
    return order


def test_plan_reward_accepts_every_correct_plan_not_only_the_gold_one():
    import json

    from hf_reason.data import generate_planning
    from hf_reason.trainers import PlanReward

    reward, optimal = PlanReward(), PlanReward(require_optimal=True)
    blocks = generate_planning(12, kind="blocks", num_items=3, seed=0)
    kwargs = dict(puzzle=blocks["puzzle"], answer=blocks["answer"])
    assert reward(prompts=blocks["prompt"], completions=blocks["answer"], **kwargs) == [1.0] * 12
    assert optimal(prompts=blocks["prompt"], completions=blocks["answer"], **kwargs) == [1.0] * 12
    longer = [
        "<think>move A onto B? no</think> " + "; ".join(_unstack_then_build(json.loads(p))) for p in blocks["puzzle"]
    ]
    assert reward(prompts=blocks["prompt"], completions=longer, **kwargs) == [1.0] * 12
    is_longer = [len(_unstack_then_build(json.loads(p))) > len(s) for p, s in zip(blocks["puzzle"], blocks["steps"])]
    assert any(is_longer)  # so the optimality check is exercised
    assert optimal(prompts=blocks["prompt"], completions=longer, **kwargs) == [0.0 if x else 1.0 for x in is_longer]
    assert ExactAnswerReward()(prompts=blocks["prompt"], completions=longer, **kwargs).count(1.0) < 12
    # the last move undone: legal but short of the goal; a block moved from under another: illegal
    short = ["; ".join(s[:-1]) for s in blocks["steps"]]
    assert reward(prompts=blocks["prompt"], completions=short, **kwargs) == [0.0] * 12
    stuck = [{"type": "blocks", "initial": [["A", "B"]], "goal": [["B", "A"]]}]
    assert reward(prompts=[""], completions=["move A onto table; move A onto B"], puzzle=stuck) == [0.0]

    schedule = generate_planning(12, kind="schedule", num_items=4, seed=1)
    other = [", ".join(_latest_ready_order(json.loads(p)["tasks"])) for p in schedule["puzzle"]]
    differs = [o != a for o, a in zip(other, schedule["answer"])]
    assert any(differs)
    assert (
        reward(
            prompts=schedule["prompt"], completions=[f"<answer>{o}</answer>" for o in other], puzzle=schedule["puzzle"]
        )
        == [1.0] * 12
    )
    assert ExactAnswerReward()(
        prompts=schedule["prompt"], completions=[f"<answer>{o}</answer>" for o in other], answer=schedule["answer"]
    ) == [0.0 if d else 1.0 for d in differs]
    backwards = [", ".join(reversed(s)) for s in schedule["steps"]]
    needs_order = [any(pre for pre in json.loads(p)["tasks"].values()) for p in schedule["puzzle"]]
    assert [
        r == 0.0 for r in reward(prompts=schedule["prompt"], completions=backwards, puzzle=schedule["puzzle"])
    ] == needs_order
    with pytest.raises(ValueError, match="`puzzle`"):
        reward(prompts=[""], completions=["x"], answer=["y"])


def test_theory_of_mind_reward_on_known_answers():
    from hf_reason.data import generate_tom_stories
    from hf_reason.trainers import TheoryOfMindReward

    stories = generate_tom_stories(30, seed=0)
    assert set(stories["order"]) == {0, 1, 2}
    reward = TheoryOfMindReward()
    columns = dict(answer=stories["answer"], distractors=stories["distractors"])
    prompts = [f"{s}\n{q}" for s, q in zip(stories["story"], stories["question"])]

    def score(completions):
        return reward(prompts=prompts, completions=completions, **columns)

    wrong = [d[0] for d in stories["distractors"]]
    assert score([f"In the {a.title()}." for a in stories["answer"]]) == [1.0] * 30
    assert (
        score([f"<think>it was moved to the {w}</think> The answer is {a}" for a, w in zip(stories["answer"], wrong)])
        == [1.0] * 30
    )  # the other container in the reasoning is not the answer
    assert score([f"the {w}" for w in wrong]) == [0.0] * 30
    assert score([f"the {a} or the {w}" for a, w in zip(stories["answer"], wrong)]) == [0.0] * 30  # hedging
    assert score([f"the {a}s" for a in stories["answer"]]) == [0.0] * 30  # whole words only
    conversational = [[{"role": "assistant", "content": f"<answer>{a}</answer>"}] for a in stories["answer"]]
    assert score(conversational) == [1.0] * 30
