"""Verifiers on known true / false cases (sympy, z3, sandbox code), trace validity, diversity, rewards, GRPO."""

import pytest

from hf_reason.data.countdown import format_countdown_prompt, generate_countdown
from hf_reason.reasoning import CodeTestsReward, CountdownVerifierScorer
from hf_reason.reasoning.constraints import (
    check_constraint_answer,
    generate_constraint_puzzles,
    parse_constraint_puzzle,
)
from hf_reason.reasoning.rewards import ConstraintReward, SympyAnswerReward, TraceValidityReward, countdown_reward
from hf_reason.reasoning.verifiers import (
    reasoning_diversity,
    sympy_equivalent,
    to_sympy,
    trace_validity,
    verify_python_code,
)


@pytest.mark.parametrize(
    "predicted, reference, expected",
    [
        ("1/2", "0.5", True),
        ("(x+1)**2", "x**2 + 2*x + 1", True),
        ("sqrt(8)", "2*sqrt(2)", True),
        ("x^2", "x**2", True),
        ("sin(x)**2 + cos(x)**2", "1", True),
        ("1/3", "0.33", False),
        ("x + 1", "x - 1", False),
        ("__import__('os').system('true')", "1", False),
    ],
)
def test_sympy_equivalence_on_known_cases(predicted, reference, expected):
    assert sympy_equivalent(predicted, reference) is expected


def test_to_sympy_rejects_anything_but_math():
    with pytest.raises(ValueError, match="Attribute|only numbers"):
        to_sympy("x.__class__")
    with pytest.raises(ValueError, match="not a math expression"):
        to_sympy("1 +")


def test_z3_family_is_unique_and_checked_by_z3():
    data = generate_constraint_puzzles(6, seed=4)
    for row in data:
        assert check_constraint_answer(row["prompt"], row["answer"])
        names, constraints, low, high = parse_constraint_puzzle(row["prompt"])
        assert constraints == row["constraints"] and (low, high) == (0, 9)
        # z3 proved the answer unique: changing any one variable breaks a constraint.
        values = dict(pair.split("=") for pair in row["answer"].split(", "))
        for name in names:
            for other in range(low, high + 1):
                if other != int(values[name]):
                    wrong = ", ".join(f"{n}={other if n == name else v}" for n, v in values.items())
                    assert not check_constraint_answer(row["prompt"], wrong)
    assert not check_constraint_answer(data[0]["prompt"], "A=1")  # missing variables
    assert ConstraintReward()(data["prompt"][:2], [data["answer"][0], "A=0, B=0, C=0"])[0] == 1.0


def test_code_verifier_runs_the_sandbox():
    good = "```python\ndef add(a, b):\n    return a + b\n```"
    bad = "```python\ndef add(a, b):\n    return a - b\n```"
    cheat = "```python\ndef add(a, b):\n    print('all tests passed'); raise SystemExit(0)\n```"
    tests = "assert add(2, 3) == 5\nassert add(-1, 1) == 0"
    assert verify_python_code(good, tests, "add")
    assert not verify_python_code(bad, tests, "add")
    assert not verify_python_code(cheat, tests, "add")
    reward = CodeTestsReward()
    assert reward(["p"] * 3, [good, bad, cheat], tests=[tests] * 3, entry_point=["add"] * 3) == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="entry_point"):
        reward(["p"], [good], tests=[tests])


def test_trace_validity_locates_the_first_invalid_step():
    good = "50 - 25 = 25\n7 - 3 = 4\n25 * 4 = 100\n#### (50 - 25) * (7 - 3)"
    assert trace_validity(good, [3, 7, 25, 50]).score == 1.0
    wrong_math = trace_validity("50 - 25 = 25\n7 - 3 = 5\n25 * 5 = 125", [3, 7, 25, 50])
    assert wrong_math.first_invalid_step == 2 and wrong_math.score == pytest.approx(2 / 3)
    reused = trace_validity("50 - 25 = 25\n25 * 4 = 100\n50 + 3 = 53", [3, 7, 25, 50])
    assert reused.first_invalid_step == 2 and "4 is not available" in reused.reasons[0]
    assert trace_validity("12 / 0 = 1").reasons[0].startswith("step 1: division by zero")
    assert trace_validity("no claims here").checked == 0


def test_countdown_verifier_scorer_checks_steps_and_looks_ahead():
    prompt = format_countdown_prompt([3, 7, 25, 50], 100)
    scorer = CountdownVerifierScorer()
    assert scorer([prompt], [["50 - 25 = 25", "7 - 3 = 4"]]) == [1.0]
    assert scorer([prompt], [["50 + 25 = 75", "7 * 3 = 21"]]) == [0.0]  # 75, 21 cannot make 100
    assert CountdownVerifierScorer(lookahead=False)([prompt], [["50 + 25 = 75", "7 * 3 = 21"]]) == [1.0]
    assert scorer([prompt], [["50 - 25 = 26"]]) == [0.0]
    assert scorer([prompt], [["50 - 50 = 0"]]) == [0.0]
    assert scorer([prompt], [["50 - 25 = 25", "#### (50 - 25) * (7 - 3)"]]) == [1.0]
    assert scorer([prompt], [["#### 50 + 50"]]) == [0.0]


def test_diversity_metrics():
    same = reasoning_diversity(["1 + 2 = 3\n#### 3"] * 4, ["3"] * 4)
    assert same == {"distinct_paths": 0.25, "distinct_answers": 0.25, "pairwise_edit_distance": 0.0}
    mixed = reasoning_diversity(["a\nb", "a\nc", "x\ny"], ["1", "1", "2"])
    assert mixed["distinct_paths"] == 1.0 and mixed["distinct_answers"] == pytest.approx(2 / 3)
    assert mixed["pairwise_edit_distance"] == pytest.approx((0.5 + 1.0 + 1.0) / 3)


def test_rewards_follow_the_trl_signature():
    data = generate_countdown(3, seed=0)
    assert countdown_reward(data["prompt"], data["completion"]) == [1.0, 1.0, 1.0]
    wrong = [c.replace("####", "#### 1 +") for c in data["completion"]]
    assert countdown_reward(data["prompt"], wrong) == [0.0, 0.0, 0.0]
    conversational = [[{"role": "assistant", "content": c}] for c in data["completion"]]
    assert countdown_reward(data["prompt"], conversational) == [1.0, 1.0, 1.0]
    assert TraceValidityReward()(data["prompt"], data["completion"]) == [1.0, 1.0, 1.0]
    reward = SympyAnswerReward()
    assert reward(["p", "p"], ["<answer>0.5</answer>", "Answer: x+1"], answer=["1/2", "x-1"]) == [1.0, 0.0]
    with pytest.raises(ValueError, match="`answer`"):
        reward(["p"], ["#### 1"])


def test_grpo_step_with_the_countdown_verifier_reward(tmp_path):
    from grpo_testing import grpo_trainer, tiny_gpt2

    from hf_reason.data import build_tokenizer
    from hf_reason.trainers import ReasoningGRPOConfig, ReasoningGRPOTrainer

    tokenizer = build_tokenizer(vocab_size=300)
    model = tiny_gpt2(tokenizer)
    seen = []

    def recorded(prompts, completions, **kwargs):
        rewards = countdown_reward(prompts, completions)
        seen.append((list(prompts), list(completions), rewards))
        return rewards

    recorded.__name__ = "countdown"
    trainer = grpo_trainer(
        ReasoningGRPOTrainer,
        ReasoningGRPOConfig,
        model,
        tokenizer,
        tmp_path,
        reward_funcs=[recorded, TraceValidityReward()],
        train_dataset=generate_countdown(8, seed=1).select_columns(["prompt"]),
    )
    trainer.train()
    prompts, completions, rewards = seen[0]
    assert len(prompts) == 8 and all(p.startswith("Numbers: ") for p in prompts)
    assert rewards == countdown_reward(prompts, completions)
    logged = trainer.state.log_history[0]
    assert "rewards/countdown/mean" in logged and "rewards/trace_validity/mean" in logged


def test_grpo_step_with_the_z3_sympy_and_sandbox_rewards(tmp_path):
    from grpo_testing import grpo_trainer, tiny_gpt2

    from hf_reason.data import build_tokenizer
    from hf_reason.trainers import ReasoningGRPOConfig, ReasoningGRPOTrainer

    tokenizer = build_tokenizer(vocab_size=300)
    data = generate_constraint_puzzles(8, seed=2).select_columns(["prompt", "answer"])
    data = data.add_column("reference", ["1/2"] * 8)
    data = data.add_column("tests", ["assert f(1) == 1"] * 8).add_column("entry_point", ["f"] * 8)
    seen = {}

    def recording(reward):
        def wrapped(prompts, completions, **kwargs):
            seen[reward.__name__] = sorted(kwargs)
            return reward(prompts, completions, **kwargs)

        wrapped.__name__ = reward.__name__
        return wrapped

    rewards = [ConstraintReward(), SympyAnswerReward("reference"), CodeTestsReward(timeout=2.0)]
    trainer = grpo_trainer(
        ReasoningGRPOTrainer,
        ReasoningGRPOConfig,
        tiny_gpt2(tokenizer),
        tokenizer,
        tmp_path,
        reward_funcs=[recording(r) for r in rewards],
        train_dataset=data,
    )
    trainer.train()
    assert {"entry_point", "reference", "tests"} <= set(seen["code_tests"])
    logged = trainer.state.log_history[0]
    for name in ("constraint_z3", "sympy_reference", "code_tests"):
        assert f"rewards/{name}/mean" in logged


def test_planning_task_simulates_the_plan_against_the_puzzle():
    from hf_reason.data import generate_planning
    from hf_reason.reasoning import planning_task

    task = planning_task()
    row = generate_planning(1, num_items=3, seed=0)[0]  # B on the table with A on it, C alone; goal: all on the table
    good = "move A onto table\n#### 1"
    assert task.is_correct(row["prompt"], good, row["puzzle"])
    assert not task.is_correct(row["prompt"], "move B onto table\n#### 1", row["puzzle"])  # B is under A
    assert not task.is_correct(row["prompt"], "move A onto C\n#### 1", row["puzzle"])  # legal, misses the goal
    assert task.extract_answer(row["prompt"], " Move A to table \n#### 1") == "move A onto table"
    assert task.is_final_step("#### 1") and not task.is_final_step("move A onto table")
    with pytest.raises(ValueError, match="puzzles"):
        task.is_correct(row["prompt"], good, 3)
