"""Every bad input to `hf-reason eval-reports` and `push` is one line naming the file, line or field; a bug is
one line too, and shows its traceback only under `--debug` / HF_REASON_DEBUG=1."""

import json

import pytest
import torch
from cli_testing import assert_one_line_error, run_cli
from conftest import tiny_trm_config

import hf_reason.cli.commands as commands
from hf_reason import TRMForPuzzleSolving
from hf_reason.cli import build_parser


REPORT = {"task_id": "math-1", "completion": "Plan: add.\nAnswer: 4"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "holds no reports (every line is blank)."),
        (b"\n  \n", "holds no reports (every line is blank)."),
        (b'{"completion": "a"}\n{"completion": "b"\n', "line 2: invalid JSON (Expecting ',' delimiter at column 19)."),
        (b'["completion"]\n', "line 1: expected a JSON object (a report with `completion`), got a list of 1."),
        (b'"Answer: 4"\n', "line 1: expected a JSON object"),
        (b'{"task_id": "x"}\n', "line 1: `completion` must be a string, got nothing."),
        (b'{"completion": 4}\n', "line 1: `completion` must be a string, got the number 4."),
        (b'{"completion": "a", "task_id": 3}\n', "line 1: `task_id` must be a string, got the number 3."),
        (b'{"completion": "a", "prompt": ["x"]}\n', "line 1: `prompt` must be a string, got a list of 1."),
        (b'{"completion": "\xff"}\n', "line 1: not UTF-8 text (byte 0xff at column 17)."),
        (b'{"completion": "a", "introspection": {}}\n', "`introspection` must be a list of records"),
        (
            b'{"completion": "a", "introspection": [{"position": "1"}]}\n',
            "`introspection[0].position` must be an integer >= 0",
        ),
        (
            b'{"completion": "a", "introspection": [{"position": 1, "attended": [{"position": 0}]}]}\n',
            "`introspection[0].attended[0].layer` must be an integer >= 0, got nothing.",
        ),
    ],
)
def test_eval_reports_names_the_line_and_field(tmp_path, capsys, content, message):
    path = tmp_path / "reports.jsonl"
    path.write_bytes(content)
    code, out, err = run_cli(["eval-reports", path, "--out", tmp_path / "eval"], capsys)
    assert_one_line_error(code, err, str(path), message)
    assert out == "" and not (tmp_path / "eval").exists()


def test_eval_reports_refuses_bad_paths(tmp_path, capsys):
    reports = tmp_path / "reports.jsonl"
    reports.write_text(json.dumps(REPORT) + "\n")
    (tmp_path / "taken").write_text("x")
    (tmp_path / "tasks.jsonl").write_bytes(b"\xfe\n")
    (tmp_path / "empty.jsonl").write_text("")
    cases = [
        (["--out", tmp_path / "taken"], f"--out {tmp_path / 'taken'} is a file; expected a folder"),
        (["--out", tmp_path / "taken" / "eval"], f"lies under {tmp_path / 'taken'}, which is a file"),
        (["--out", tmp_path / "eval", "--tasks", tmp_path / "none.jsonl"], "none.jsonl: no such file"),
        (["--out", tmp_path / "eval", "--tasks", tmp_path], f"--tasks {tmp_path} is a folder"),
        (
            ["--out", tmp_path / "eval", "--tasks", tmp_path / "tasks.jsonl"],
            "tasks.jsonl, line 1, field `<encoding>`: not UTF-8 (byte 0xfe)",
        ),
        (["--out", tmp_path / "eval", "--tasks", tmp_path / "empty.jsonl"], "empty.jsonl holds no tasks"),
        (["--out", tmp_path / "eval", "--lm", tmp_path / "no-lm"], f"--lm {tmp_path / 'no-lm'}: no such folder"),
    ]
    for flags, message in cases:
        code, _, err = run_cli(["eval-reports", reports, *flags], capsys)
        assert_one_line_error(code, err, message)
    code, _, err = run_cli(["eval-reports", tmp_path / "nope.jsonl", "--out", tmp_path / "eval"], capsys)
    assert_one_line_error(code, err, f"{tmp_path / 'nope.jsonl'}: no such file (expected a JSONL file of reports).")


@pytest.fixture
def model_dir(tmp_path):
    torch.manual_seed(0)
    TRMForPuzzleSolving(tiny_trm_config()).save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def test_push_dry_run_names_what_is_wrong(model_dir, tmp_path, capsys):
    def push(*argv):
        return run_cli(["push", *argv, "--dry-run"], capsys)

    assert_one_line_error(*push(tmp_path / "none", "org/x")[::2], f"`source_dir` {tmp_path / 'none'} is not a dir")
    assert_one_line_error(*push(model_dir, "no-org")[::2], "`repo_id` must look like 'org/name', got 'no-org'.")
    assert_one_line_error(*push(model_dir, "org/x", "--onnx", tmp_path / "none")[::2], "`onnx_dir`")
    weights = model_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    assert_one_line_error(*push(model_dir, "org/x")[::2], f"{weights} is not a whole safetensors file")
    weights.unlink()
    assert_one_line_error(*push(model_dir, "org/x")[::2], f"{model_dir} holds no model.safetensors")
    for config, message in ((b"{", "is not a valid JSON file"), (b"[1]", "must hold a JSON object, got list")):
        (model_dir / "config.json").write_bytes(config)
        assert_one_line_error(*push(model_dir, "org/x")[::2], f"{model_dir / 'config.json'} {message}")


def test_push_dry_run_lists_each_file_left_out_with_its_reason(model_dir, capsys):
    (model_dir / "trainer_state.json").write_text("{}")
    (model_dir / "secrets.json").write_text("{}")
    (model_dir / "wandb").mkdir()
    code, out, err = run_cli(["push", model_dir, "org/trm", "--dry-run"], capsys)
    assert code == 0, err
    assert "Left out (3):" in out
    assert "  left out: secrets.json  (may hold credentials)" in out
    assert "  left out: trainer_state.json  (temporary or training-state file)" in out
    assert "  left out: wandb/  (training output, not part of the model)" in out


def _broken_command(args):
    raise RuntimeError("a bug\nover two lines")


def test_a_bug_is_one_line_and_its_traceback_is_behind_debug(monkeypatch, capsys):
    monkeypatch.setattr(commands, "cmd_env", _broken_command)
    monkeypatch.setattr("hf_reason.cli.cmd_env", _broken_command)
    monkeypatch.delenv("HF_REASON_DEBUG", raising=False)
    code, _, err = run_cli(["env"], capsys)
    assert_one_line_error(code, err, "unexpected RuntimeError in `hf-reason env`: a bug over two lines", status=1)
    assert "--debug or HF_REASON_DEBUG=1" in err
    for argv in (["--debug", "env"], ["env", "--debug"]):
        with pytest.raises(RuntimeError, match="a bug"):
            run_cli(argv, capsys)
    monkeypatch.setenv("HF_REASON_DEBUG", "1")
    with pytest.raises(RuntimeError, match="a bug"):
        run_cli(["env"], capsys)


def test_help_documents_the_exit_status_and_debug():
    text = build_parser().format_help()
    assert "--debug" in text and "HF_REASON_DEBUG=1" in text and "Exit status" in text
    solve = " ".join(build_parser()._subparsers._group_actions[0].choices["solve"].format_help().split())
    assert "{auto,sudoku,maze,arc,tokens}" in solve and "81-character line" in solve


def test_usage_errors_stay_argparses(capsys):
    code, _, err = run_cli(["solve"], capsys)
    assert code == 2 and err.startswith("usage: hf-reason solve") and "Traceback" not in err
    code, _, err = run_cli(["solve", "m", "--format", "png"], capsys)
    assert code == 2 and "argument --format: invalid choice: 'png'" in err
