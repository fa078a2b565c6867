"""Entropic steering: spike detection on scripted distributions, the clarify action and its stop, traces saved and plotted."""

import json
import math

import pytest
import torch
from decoding_testing import our_tokenizer, tiny_gpt2, with_control_tokens

from hf_reason.data import CLARIFY_TOKEN
from hf_reason.decoding import EntropyMonitor, EntropySteeringConfig, generate, next_token_entropy
from hf_reason.decoding.steering import SpikeDetector, plot_entropy_traces


VOCAB = 16


def scores_with_entropy(kind: str) -> torch.Tensor:
    """One row of scores: `peaked` (entropy ~0.03 nats), `flat` (uniform: log 16 = 2.77 nats), `half`
    (uniform over 4 tokens: log 4 = 1.39 nats)."""
    scores = torch.full((VOCAB,), -30.0)
    if kind == "peaked":
        scores[3] = 0.0
        scores[4] = -5.0
    elif kind == "flat":
        scores[:] = 0.0
    else:
        scores[:4] = 0.0
    return scores


def run_script(monitor: EntropyMonitor, script: list[list[str]], tokens: list[list[int]]):
    """Feeds the monitor one step at a time, as `generate` would: `script[t][row]` is the distribution
    at step t, `tokens[t][row]` the token emitted there. Returns the processed scores of every step."""
    ids = torch.zeros((len(script[0]), 3), dtype=torch.long)  # the prompts
    outputs = []
    for t, kinds in enumerate(script):
        scores = torch.stack([scores_with_entropy(k) for k in kinds])
        outputs.append(monitor(ids, scores))
        ids = torch.cat([ids, torch.tensor(tokens[t])[:, None]], 1)
    return outputs


def test_entropy_of_scripted_distributions():
    entropy = next_token_entropy(torch.stack([scores_with_entropy(k) for k in ("flat", "half", "peaked")]))
    torch.testing.assert_close(entropy[:2], torch.tensor([math.log(16), math.log(4)]), rtol=0, atol=1e-5)
    assert entropy[2] < 0.05
    # masked (-inf) entries count zero, they do not make NaNs
    masked = torch.tensor([[0.0, 0.0, float("-inf"), float("-inf")]])
    torch.testing.assert_close(next_token_entropy(masked), torch.tensor([math.log(2)]))


def test_spikes_are_detected_against_the_running_baseline():
    # row 0: confident, then one sudden flat step at position 3, confident again
    # row 1: uncertain throughout (flat): above the threshold but never far above its own baseline
    # row 2: confident, then a moderate rise (half) that stays below the threshold
    script = [["peaked", "flat", "peaked"]] * 3 + [["flat", "flat", "half"]] + [["peaked", "flat", "half"]] * 2
    tokens = [[5, 5, 5]] * len(script)
    monitor = EntropyMonitor(action="record", threshold=2.0, delta=1.0, window=4, initial_baseline=2.77)
    outputs = run_script(monitor, script, tokens)
    assert monitor.spike_positions == [[3], [], []]
    assert monitor.clarified == [False, False, False]
    assert [len(t) for t in monitor.traces] == [6, 6, 6]
    # "record" leaves the scores alone
    assert all(
        torch.equal(out, torch.stack([scores_with_entropy(k) for k in kinds])) for out, kinds in zip(outputs, script)
    )
    # the initial baseline governs the first step: calibrated low, a flat first step is a spike
    low_start = EntropyMonitor(action="record", threshold=2.0, delta=1.0, initial_baseline=0.0)
    run_script(low_start, [["flat"], ["peaked"]], [[5], [5]])
    assert low_start.spike_positions == [[0]]


def test_detector_keeps_spikes_out_of_the_baseline():
    detector = SpikeDetector(EntropySteeringConfig(threshold=1.0, delta=1.0, window=2, initial_baseline=0.0))
    assert [detector.update(e) for e in (0.1, 0.3, 2.5, 2.6, 0.2)] == [False, False, True, True, False]
    assert detector.history == [0.1, 0.3, 0.2]  # spikes do not raise the baseline they are judged against
    assert detector.baseline == pytest.approx(0.25)  # the last `window` non-spikes


def test_clarify_action_forces_the_token_and_stops_the_row():
    monitor = EntropyMonitor(
        action="clarify", clarify_token_id=9, eos_token_id=2, threshold=2.0, delta=1.0, initial_baseline=0.1
    )
    script = [["peaked", "peaked"], ["flat", "peaked"], ["peaked", "peaked"]]
    outputs = run_script(monitor, script, tokens=[[3, 3], [9, 3], [0, 3]])
    assert monitor.clarified == [True, False] and monitor.spike_positions == [[1], []]
    forced = outputs[1][0]
    assert forced[9] == 0.0 and torch.isinf(forced[torch.arange(VOCAB) != 9]).all()
    assert torch.equal(outputs[1][1], scores_with_entropy("peaked"))  # the other row is untouched
    # after <clarify> the row is no longer watched
    assert len(monitor.traces[0]) == 2 and len(monitor.traces[1]) == 3
    stop = monitor.stopping_criteria()
    assert stop(torch.tensor([[1, 9], [1, 3]]), None).tolist() == [True, False]


def test_settings_are_checked():
    with pytest.raises(ValueError, match="`action` must be one of"):
        EntropySteeringConfig(action="pause")
    with pytest.raises(ValueError, match="`window` must be an integer >= 1"):
        EntropySteeringConfig(window=0)
    with pytest.raises(ValueError, match="clarify_token_id"):
        EntropyMonitor(action="clarify")
    with pytest.raises(ValueError, match="not both"):
        EntropyMonitor(EntropySteeringConfig(), threshold=1.0)


def test_generate_with_the_monitor_stops_on_clarify_and_saves_traces(tmp_path):
    tokenizer, _ = with_control_tokens(our_tokenizer())
    model = tiny_gpt2(tokenizer)
    clarify = tokenizer.convert_tokens_to_ids(CLARIFY_TOKEN)
    batch = tokenizer(["how many apples", "a b"], return_tensors="pt", padding=True, padding_side="left")
    # an untrained model is uncertain everywhere: a threshold below its entropy and no required rise
    # make its first step a spike
    monitor = EntropyMonitor(action="clarify", clarify_token_id=clarify, threshold=0.5, delta=0.0)
    out = generate(
        model,
        batch["input_ids"],
        attention_mask=batch["attention_mask"],
        tokenizer=tokenizer,
        entropy_monitor=monitor,
        max_new_tokens=6,
        pad_token_id=tokenizer.pad_token_id,
    )
    prompt = batch["input_ids"].shape[1]
    assert out.shape[1] == prompt + 1 and out[:, prompt].tolist() == [clarify, clarify]
    assert monitor.clarified == [True, True] and monitor.spike_positions == [[0], [0]]
    # with a threshold it never reaches, the same generation runs to its budget and records everything
    quiet = EntropyMonitor(action="record", threshold=50.0)
    out = generate(
        model,
        batch["input_ids"],
        attention_mask=batch["attention_mask"],
        tokenizer=tokenizer,
        entropy_monitor=quiet,
        max_new_tokens=4,
    )
    assert [len(t) for t in quiet.traces] == [4, 4] and quiet.spike_positions == [[], []]
    path = quiet.save_traces(tmp_path / "traces.json")
    saved = json.loads(path.read_text())
    assert saved["config"]["threshold"] == 50.0 and len(saved["rows"][0]["entropies"]) == 4
    png = plot_entropy_traces(saved, tmp_path / "plots" / "traces.png", title="test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="must index the 2 traced rows"):
        monitor.plot(tmp_path / "x.png", rows=[5])
