"""Pass@2 scoring on hand-made attempt files, augmentation voting and its inversion, test-time training
of only the parameters it should, and the hybrid's merge."""

import json
import math

import numpy as np
import pytest
import torch

from hf_reason import TRMConfig, TRMForPuzzleSolving
from hf_reason.arc import ttt
from hf_reason.arc.hybrid import HybridConfig, merge_attempts, solve_hybrid
from hf_reason.arc.search import DSLSearchConfig
from hf_reason.arc.voting import VoteCandidate, predict_with_voting, vote_on_predictions
from hf_reason.data.arc import (
    ARC_SEQ_LEN,
    ARC_VOCAB_SIZE,
    ArcTask,
    apply_arc_augmentation,
    invert_arc_augmentation,
)
from hf_reason.evaluation.arc import (
    attempts_to_submission,
    compare_arc_scores,
    read_arc_submission,
    score_arc_submission,
    summarize_arc_scores,
    write_arc_submission,
)


A = [[1, 2], [3, 4]]
B = [[0, 0], [0, 5]]
C = [[7]]


def test_pass_at_2_needs_every_test_output_and_counts_either_attempt(tmp_path):
    solutions = {"one": [A], "two": [A, B], "half": [A, B], "second": [C], "missing": [A]}
    submission = {
        "one": attempts_to_submission([[B, A]]),  # the second attempt matches
        "two": attempts_to_submission([[A], [C, B]]),  # both test inputs matched
        "half": attempts_to_submission([[A, B], [A, C]]),  # the second test input missed
        "second": [{"attempt_1": [], "attempt_2": C}],  # an empty first attempt
    }
    path = write_arc_submission(tmp_path / "submission.json", submission)
    assert json.loads(path.read_text())["two"][0] == {"attempt_1": A, "attempt_2": []}
    scores = score_arc_submission(read_arc_submission(path), solutions, {"one": 2.0, "two": 4.0})
    solved = {s.task_id: s.solved for s in scores}
    assert solved == {"one": True, "two": True, "half": False, "second": True, "missing": False}
    by_id = {s.task_id: s for s in scores}
    assert by_id["half"].score == 0.5 and by_id["missing"].attempts_made == 0 and by_id["two"].attempts_made == 3
    summary = summarize_arc_scores(scores)
    assert summary["tasks_solved"] == 3 and summary["pass_at_2"] == pytest.approx(0.6)
    low, high = summary["pass_at_2_interval"]
    assert 0.2 < low < 0.6 < high < 0.95
    assert summary["arc_prize_score"] == pytest.approx((1 + 1 + 0.5 + 1 + 0) / 5)
    assert summary["cpu_seconds_total"] == 6.0 and summary["cpu_seconds_mean"] == 3.0
    assert summary["solved_task_ids"] == ["one", "second", "two"]


def test_submission_errors_name_the_file_task_and_attempt(tmp_path):
    with pytest.raises(ValueError, match="at most 2 attempts"):
        attempts_to_submission([[A, B, C]])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"t": [{"attempt_1": [[1, 12]]}]}))
    with pytest.raises(ValueError, match=r"bad.json: task t, test input 0, attempt_1"):
        read_arc_submission(bad)
    bad.write_text(json.dumps({"t": [{"attempt_2": [[1, 2], [3]]}]}))
    with pytest.raises(ValueError, match=r"bad.json: task t, test input 0, attempt_2 must be a 2-D grid"):
        read_arc_submission(bad)
    with pytest.raises(ValueError, match="without solutions"):
        score_arc_submission({"stray": []}, {"t": [A]})


def test_paired_comparison_counts_discordant_tasks():
    solutions = {str(i): [A] for i in range(10)}
    ours = score_arc_submission({str(i): attempts_to_submission([[A]]) for i in range(8)}, solutions)
    reference = score_arc_submission({str(i): attempts_to_submission([[A]]) for i in range(2)}, solutions)
    result = compare_arc_scores(ours, reference)
    assert (result["only_ours"], result["only_reference"]) == (6, 0)
    assert result["difference"] == pytest.approx(0.6) and result["p_value"] == pytest.approx(2 / 2**6)


ALL_AUGMENTATIONS = [f"d{k}_c{perm}" for k in range(8) for perm in ("0123456789", "0312549876")]


@pytest.mark.parametrize("augmentation", ALL_AUGMENTATIONS)
def test_voting_inverts_every_augmentation(augmentation):
    grid = np.array([[1, 2, 3], [4, 5, 6]])
    wrong = np.array([[9]])
    predictions = [
        (apply_arc_augmentation(grid, augmentation), augmentation, 0.9),
        (apply_arc_augmentation(grid, "d0_c0123456789"), "d0_c0123456789", 0.7),
        (wrong, augmentation, 0.99),
        (np.zeros((0, 0)), augmentation, 1.0),  # no prediction: not a vote
    ]
    np.testing.assert_array_equal(
        invert_arc_augmentation(apply_arc_augmentation(grid, augmentation), augmentation), grid
    )
    candidates = vote_on_predictions(predictions, top_k=2)
    np.testing.assert_array_equal(candidates[0].grid, grid)
    assert (candidates[0].votes, candidates[0].total_votes) == (2, 3)
    assert candidates[0].confidence == pytest.approx(0.8) and candidates[0].share == pytest.approx(2 / 3)


def tiny_trm(seed=0, puzzle_emb_ndim=16):
    torch.manual_seed(seed)
    config = TRMConfig(
        vocab_size=ARC_VOCAB_SIZE,
        seq_len=ARC_SEQ_LEN,
        hidden_size=16,
        num_heads=2,
        intermediate_size=32,
        L_layers=1,
        H_cycles=1,
        L_cycles=1,
        halt_max_steps=2,
        mixer="attention",
        pos_encodings="rope",
        puzzle_emb_ndim=puzzle_emb_ndim,
        num_puzzle_identifiers=3,
    )
    return TRMForPuzzleSolving(config).eval()


def small_task():
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(3):
        x = rng.integers(0, 4, (3, 4))
        pairs.append((x, np.fliplr(x)))
    test = rng.integers(0, 4, (3, 4))
    return ArcTask("tiny", tuple(pairs), (test,), (np.fliplr(test),))


def test_predict_with_voting_returns_grids_in_the_original_frame():
    model = tiny_trm()
    task = small_task()
    augmentations = ["d0_c0123456789", "d1_c0123456789", "d4_c0123456789"]
    votes = predict_with_voting(model, task.test_inputs, augmentations, puzzle_identifiers=[0, 1, 2], top_k=None)
    assert len(votes) == 1 and 1 <= len(votes[0]) <= 3
    assert sum(c.votes for c in votes[0]) == votes[0][0].total_votes <= 3
    assert all(0.0 <= c.confidence <= 1.0 for c in votes[0])
    with pytest.raises(ValueError, match="one entry per augmentation"):
        predict_with_voting(model, task.test_inputs, augmentations, puzzle_identifiers=[0, 1])


def _snapshot(module):
    return {name: p.detach().clone() for name, p in module.named_parameters()}


@pytest.mark.parametrize("lora_rank", [0, 2])
def test_ttt_trains_only_the_new_puzzle_rows_and_adapters(lora_rank):
    model = tiny_trm()
    before = _snapshot(model)
    config = ttt.ArcTTTConfig(num_augmentations=3, steps=4, supervision_steps=2, batch_size=4, lora_rank=lora_rank)
    trained = ttt.test_time_train(model, small_task(), config)
    # the model given is untouched
    for name, parameter in model.named_parameters():
        torch.testing.assert_close(parameter, before[name], rtol=0, atol=0)
    assert trained.steps == 4 and len(trained.losses) == 4 and trained.puzzle_identifiers == [1, 2, 3, 4]
    adapted = dict(trained.model.named_parameters())
    embedding = adapted["model.puzzle_embedding.weight"]
    assert embedding.shape[0] == 5
    # row 0 (the blank puzzle) keeps the model's; the task's rows moved from their mean start
    torch.testing.assert_close(embedding[0], before["model.puzzle_embedding.weight"][0], rtol=0, atol=0)
    start = before["model.puzzle_embedding.weight"][1:].mean(0)
    assert not torch.allclose(embedding[1:], start.expand(4, -1))
    lora = [n for n in adapted if "lora_" in n]
    assert bool(lora) == bool(lora_rank)
    for name, parameter in adapted.items():
        if name == "model.puzzle_embedding.weight" or "lora_" in name:
            continue
        base = name.replace("base_layer.", "")
        torch.testing.assert_close(parameter, before[base], rtol=0, atol=0, msg=f"{name} changed")
    if lora_rank:
        lora_b = [p for n, p in adapted.items() if "lora_B" in n]
        assert any(p.abs().sum() > 0 for p in lora_b)  # lora_B starts at zero: moved means trained


def test_ttt_stops_at_its_cpu_budget_and_checks_its_config():
    trained = ttt.test_time_train(
        tiny_trm(), small_task(), ttt.ArcTTTConfig(num_augmentations=1, steps=10_000, cpu_seconds=0.5)
    )
    assert trained.steps < 10_000 and trained.cpu_seconds < 5.0
    with pytest.raises(ValueError, match="steps"):
        ttt.ArcTTTConfig(steps=0)
    with pytest.raises(ValueError, match="puzzle_emb_ndim=0"):
        ttt.test_time_train(tiny_trm(puzzle_emb_ndim=0), small_task(), ttt.ArcTTTConfig(steps=1))


def test_merge_prefers_dsl_then_agreement_then_vote_share():
    dsl = [np.array(A)]
    trm = [
        VoteCandidate(np.array(B), votes=6, total_votes=10, confidence=0.9),
        VoteCandidate(np.array(A), votes=3, total_votes=10, confidence=0.5),
    ]
    merged = merge_attempts([dsl], [trm], 1)[0]
    assert [a.source for a in merged] == ["dsl+trm", "trm"]
    assert merged[0].confidence == pytest.approx(1.25)
    # two DSL predictions: a TRM grid with more than half the votes displaces the second
    merged = merge_attempts([[np.array(A), np.array(C)]], [trm[:1]], 1)[0]
    assert [a.source for a in merged] == ["dsl", "trm"]
    merged = merge_attempts([[np.array(A), np.array(C)]], None, 1)[0]
    assert [a.source for a in merged] == ["dsl", "dsl"]
    with pytest.raises(ValueError, match="run_trm_when"):
        HybridConfig(run_trm_when="never")


def test_hybrid_keeps_a_dsl_solution_and_runs_the_trm_where_asked():
    task = small_task()
    dsl_config = DSLSearchConfig(max_size=1, cpu_seconds=10)
    ttt_config = ttt.ArcTTTConfig(num_augmentations=1, steps=1, batch_size=2)
    result = solve_hybrid(task, tiny_trm(), dsl_config, ttt_config, HybridConfig(run_trm_when="unsolved"))
    assert result.trm_votes is None and result.attempts[0][0].source == "dsl"
    np.testing.assert_array_equal(result.attempts[0][0].grid, task.test_outputs[0])
    result = solve_hybrid(task, tiny_trm(), dsl_config, ttt_config, HybridConfig(run_trm_when="always"))
    assert result.trm_votes is not None and result.extra["ttt_steps"] == 1
    assert result.attempts[0][0].source.startswith("dsl") and not math.isnan(result.cpu_seconds)
    votes, trained = ttt.solve_with_ttt(tiny_trm(), task, ttt_config)
    assert trained.steps == 1 and len(votes) == 1
