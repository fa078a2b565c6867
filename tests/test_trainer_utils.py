"""What the trainers share: the logged-metric window, the after-optimizer-step callback, the config check."""

from types import SimpleNamespace

import pytest

from hf_reason.trainers.utils import AfterOptimizerStep, MetricWindow, check_value


ONE_PROCESS = SimpleNamespace(num_processes=1)


def test_metric_window_logs_means_of_recorded_keys_and_sums_of_totals_then_starts_afresh():
    window = MetricWindow(["loss", "exact_accuracy"], total_keys=["episodes"])
    assert not window
    window.add("loss", 1.0)
    window.add("loss", 2.0)
    window.add("exact_accuracy", 0.0, count=0)  # a window where no example finished
    window.add("episodes", 3.0)
    window.add("episodes", 4.0)
    assert window
    means, totals = window.reduce(ONE_PROCESS)
    assert means == {"loss": 1.5} and totals == {"episodes": 7.0}
    assert not window
    assert window.reduce(ONE_PROCESS) == ({}, {"episodes": 0.0})


def test_metric_window_means_are_rounded_to_six_digits():
    window = MetricWindow(["q"])
    for value in (1.0, 1.0, 2.0):
        window.add("q", value)
    assert window.reduce(ONE_PROCESS)[0] == {"q": 1.333333}


def test_after_optimizer_step_calls_its_function_on_every_optimizer_step():
    calls = []
    callback = AfterOptimizerStep(lambda: calls.append(len(calls)))
    for _ in range(3):
        callback.on_optimizer_step(args=None, state=None, control=None)
    assert calls == [0, 1, 2]


def test_check_value_names_the_field_what_it_must_be_and_the_value():
    check_value(True, "tau", 0.5, "in (0, 1]")
    with pytest.raises(ValueError, match=r"^`tau` must be in \(0, 1\], got 0\.0\.$"):
        check_value(False, "tau", 0.0, "in (0, 1]")


def test_a_stock_trainer_checkpoint_is_complete_once_its_trainer_state_is_written(tmp_path):
    from transformers.trainer import TRAINER_STATE_NAME

    from hf_reason.trainers import last_complete_checkpoint, resolve_resume_checkpoint

    for step, state in ((2, '{"global_step": 2}'), (4, '{"global_st'), (6, None)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"")
        if state is not None:  # checkpoint-4 was cut mid-write, checkpoint-6 before its state
            (folder / TRAINER_STATE_NAME).write_text(state)
    assert last_complete_checkpoint(tmp_path, TRAINER_STATE_NAME) == str(tmp_path / "checkpoint-2")
    assert resolve_resume_checkpoint("last", tmp_path, TRAINER_STATE_NAME) == str(tmp_path / "checkpoint-2")
    # hf-reason trainers' own state files are what counts for them: none of these has one
    assert last_complete_checkpoint(tmp_path) is None
