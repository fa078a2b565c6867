"""Fuzzing the command line: seeded malformed inputs to `solve`, `eval-reports`, `push --dry-run`, `export` and
`env` each end with exit status 2, no traceback and one line on stderr naming the file (and the line).

Each case is drawn from its seed (`random.Random(seed)`), so a failure names the seed that reproduces it. The
malformations: cut JSON, bytes that are not UTF-8, deep nesting, scalars, objects and lists where another kind
belongs, ragged grids, floats / booleans / huge or out-of-range integers among the cells, strings of the wrong
length or alphabet, missing and extra fields; for model folders, truncated or foreign weights, broken configs,
missing files; for options, values out of range. A few cases run the installed console script.
"""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cli_testing import assert_one_line_error, run_cli
from conftest import tiny_trm_config

from hf_reason import TRMForPuzzleSolving


SUDOKU = "800000000003600000070090200050007000000045700000100030001000068008500010090000400"
# more cases for a longer run: HF_REASON_FUZZ_CASES=2000 python -m pytest tests/test_cli_fuzz.py
SEEDS = range(int(os.environ.get("HF_REASON_FUZZ_CASES", "24")))


@pytest.fixture(scope="module")
def sudoku_model(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("fuzz") / "sudoku"
    TRMForPuzzleSolving(tiny_trm_config(vocab_size=11, seq_len=81)).save_pretrained(path)
    return path


# --------------------------------------------------------------------------- malformed JSON lines
def _cut(rng: random.Random, value) -> bytes:
    """A proper prefix of an object's or a list's JSON text: never valid JSON."""
    text = json.dumps(value).encode()
    return text[: rng.randrange(1, len(text))]


def _not_utf8(rng: random.Random, value) -> bytes:
    text = json.dumps(value).encode()
    at = rng.randrange(len(text) + 1)
    return text[:at] + bytes([rng.choice([*range(0x80, 0xC0), *range(0xF8, 0x100)])]) + text[at:]


def _deep(rng: random.Random, _) -> bytes:
    depth = rng.randrange(2_000, 200_000)
    return b"[" * depth + b"]" * depth


def _scalar(rng: random.Random):
    return rng.choice([None, True, False, rng.randrange(-(10**30), 10**30), rng.random() * 1e6, "", "x" * 90])


def _replace_cell(rng: random.Random, cells: list, bad) -> list:
    cells = list(cells)
    cells[rng.randrange(len(cells))] = bad
    return cells


def _bad_cell(rng: random.Random, high: int):
    return rng.choice(
        [True, False, 1.0, rng.random(), float("nan"), float("inf"), None, "1", [1], {}, -1 - rng.randrange(5)]
        + [high + 1 + rng.randrange(100), 2**64 + rng.randrange(10)]
    )


def _bad_puzzle(rng: random.Random):
    """A puzzle value that a 9x9 Sudoku model must refuse."""
    grid = [[rng.randrange(10) for _ in range(9)] for _ in range(9)]
    tokens = [rng.randrange(1, 11) for _ in range(81)]
    kind = rng.randrange(9)
    if kind == 0:  # a line of the wrong length, or with a character outside 0-9 and '.'
        line = "".join(rng.choice("0123456789.") for _ in range(rng.choice([0, 1, 80, 82, 9, 100])))
        return line if rng.random() < 0.5 else SUDOKU[:40] + rng.choice("x -/:#é٣") + SUDOKU[41:]
    if kind == 1:  # ragged grid
        row = rng.randrange(9)
        grid[row] = grid[row][: rng.randrange(9)] if rng.random() < 0.5 else grid[row] + [0]
        return grid
    if kind == 2:  # wrong number of rows
        return grid[: rng.randrange(9)] or [[]]
    if kind == 3:  # a float, boolean, string, list, or out-of-range digit in a cell
        grid[rng.randrange(9)] = _replace_cell(rng, grid[0], _bad_cell(rng, 9))
        return grid
    if kind == 4:  # token ids of the wrong count
        return tokens[: rng.choice([0, 1, 16, 80])] or tokens + tokens[: rng.randrange(1, 9)]
    if kind == 5:  # a bad token id
        return _replace_cell(rng, tokens, _bad_cell(rng, 10))
    if kind == 6:  # a scalar or an object where the puzzle belongs
        return rng.choice([_scalar(rng), {"puzzle": {"rows": grid}}, {}])
    if kind == 7:  # a maze or ARC form given to the Sudoku model
        return rng.choice([["#" * 9] * 9, "#########\n#S     G#", [[0] * 3] * 2])
    return [row + [0] for row in grid] + [[0] * 10]  # a 10x10 grid


def _bad_solve_line(rng: random.Random) -> bytes:
    kind = rng.randrange(6)
    if kind == 0:
        return _cut(rng, {"puzzle": SUDOKU})
    if kind == 1:
        return _not_utf8(rng, {"puzzle": SUDOKU})
    if kind == 2:
        return _deep(rng, None)
    if kind == 3:  # fields: none of the puzzle's, several, or a bad identifier
        return json.dumps(
            rng.choice(
                [
                    {"puzle": SUDOKU},
                    {"puzzle": SUDOKU, "input_ids": [1] * 81},
                    {"puzzle": SUDOKU, "puzzle_identifiers": rng.choice([1, -1, 0.0, True, "0"])},
                ]
            )
        ).encode()
    puzzle = _bad_puzzle(rng)
    return json.dumps({"puzzle": puzzle} if kind == 4 else puzzle).encode()


def _with_good_lines(rng: random.Random, good: dict, bad: bytes) -> tuple[bytes, int]:
    """`bad` after a random number of good lines and blank lines; returns the content and the bad line's number."""
    lines = [rng.choice([json.dumps(good).encode(), b"", b"   "]) for _ in range(rng.randrange(4))]
    return b"\n".join([*lines, bad]) + rng.choice([b"", b"\n"]), len(lines) + 1


@pytest.mark.parametrize("seed", SEEDS)
def test_solve_refuses_malformed_puzzles_in_one_line(sudoku_model, tmp_path, capsys, seed):
    rng = random.Random(seed)
    content, number = _with_good_lines(rng, {"puzzle": SUDOKU}, _bad_solve_line(rng))
    path = tmp_path / "puzzles.jsonl"
    path.write_bytes(content)
    code, out, err = run_cli(["solve", sudoku_model, "--input", path], capsys)
    assert_one_line_error(code, err, f"{path}, line {number}: ")
    assert out == ""


def _bad_report(rng: random.Random) -> bytes:
    report = {"task_id": "math-1", "completion": "Plan: add.\nAnswer: 4"}
    kind = rng.randrange(7)
    if kind == 0:
        return _cut(rng, report)
    if kind == 1:
        return _not_utf8(rng, report)
    if kind == 2:
        return _deep(rng, None)
    if kind == 3:  # not an object
        return json.dumps(rng.choice([_scalar(rng), [report], list(report)])).encode()
    if kind == 4:  # a field of the wrong type, or no completion
        key = rng.choice(["task_id", "completion", "prompt"])
        broken = {**report, key: rng.choice([1, 2.5, True, [], {}] + ([None] if key == "completion" else []))}
        return json.dumps(rng.choice([broken, {"task_id": "math-1"}])).encode()
    # introspection: the wrong kind at some depth
    record = {"position": 3, "token": "x", "attended": [{"token": "a", "position": 0, "layer": 0, "head": 0}]}
    where = rng.randrange(5)
    bad = rng.choice([True, 1.5, float("nan"), None, "1", [1], {}, -1 - rng.randrange(5)])
    bad = bad if where else rng.choice(["records", 3, {}])
    if where == 1:
        record["position"] = rng.choice([bad, "3", None, 1.5])
    elif where == 2:
        record["attended"] = rng.choice([{}, "a", 3])
    elif where == 3:
        record["attended"][0][rng.choice(["position", "layer", "head"])] = rng.choice(["0", 0.5, None, True])
    elif where == 4:
        record["attended"][0]["weight"] = rng.choice(["0.5", None, True, [0.5]])
    introspection = bad if where == 0 else [record]
    return json.dumps({**report, "introspection": introspection}).encode()


@pytest.mark.parametrize("seed", SEEDS)
def test_eval_reports_refuses_malformed_reports_in_one_line(tmp_path, capsys, seed):
    rng = random.Random(seed)
    good = {"task_id": "math-1", "completion": "Plan: add.\nAnswer: 4"}
    content, number = _with_good_lines(rng, good, _bad_report(rng))
    if seed % 8 == 7:
        content, number = rng.choice([b"", b"\n\n", b"  \n"]), None  # no report at all
    path = tmp_path / "reports.jsonl"
    path.write_bytes(content)
    code, out, err = run_cli(["eval-reports", path, "--out", tmp_path / "eval"], capsys)
    assert_one_line_error(code, err, f"{path}, line {number}: " if number else f"{path} holds no reports")
    assert out == "" and not (tmp_path / "eval").exists()


# --------------------------------------------------------------------------- malformed model folders and options
def _broken_model_folder(rng: random.Random, source: Path, target: Path) -> str:
    """Copies the saved model `source` to `target` with one thing broken; returns a fragment of the message."""
    target.mkdir()
    for path in source.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    weights, config = target / "model.safetensors", target / "config.json"
    kind = rng.randrange(6)
    if kind == 0:  # cut anywhere, or a foreign file under the weights' name
        data = weights.read_bytes()
        weights.write_bytes(rng.choice([data[: rng.randrange(len(data))], b"PK\x03\x04" + data[:50], data + b"x"]))
        return f"{weights} is not a whole safetensors file"
    if kind == 1:
        config.write_bytes(rng.choice([b"", b"{", b'{"model_type": "trm",', b"\xff\xfe{}"]))
        return "config.json"
    if kind == 2:
        config.write_text(json.dumps(rng.choice([[], "trm", 3, None])))
        return "config.json"
    if kind == 3:
        weights.unlink()
        return "model.safetensors" if rng.random() < 0.5 else ""
    if kind == 4:
        (target / "model.safetensors.index.json").write_text(
            json.dumps({"weight_map": {"w": rng.choice(["missing.safetensors", "../x.safetensors"])}})
        )
        return "model.safetensors.index.json"
    config.unlink()
    return ""


@pytest.mark.parametrize("seed", SEEDS)
def test_push_dry_run_refuses_broken_folders_in_one_line(sudoku_model, tmp_path, capsys, seed):
    rng = random.Random(seed)
    folder = tmp_path / "model"
    fragment = _broken_model_folder(rng, sudoku_model, folder)
    argv = ["push", folder, "org/model", "--dry-run"]
    if seed % 6 == 5:  # a bad repository id or ONNX folder instead
        argv = ["push", sudoku_model, rng.choice(["model", "a/b/c", "/x", ""]), "--dry-run"]
        fragment = "`repo_id` must look like 'org/name'"
    elif seed % 6 == 4:
        argv = ["push", sudoku_model, "org/model", "--dry-run", "--onnx", rng.choice([folder / "none", sudoku_model])]
        fragment = "`onnx_dir`"
    code, _, err = run_cli(argv, capsys)
    message = assert_one_line_error(code, err, fragment)
    assert str(tmp_path) in message or "repo_id" in message or str(sudoku_model) in message


@pytest.mark.parametrize("seed", SEEDS)
def test_export_refuses_bad_options_and_folders_in_one_line(sudoku_model, tmp_path, capsys, seed):
    rng = random.Random(seed)
    out = tmp_path / "out"
    kind = seed % 4
    if kind == 0:
        argv, fragment = ["--opset", rng.choice([-1, 0, 1, 3, 7, 11, 24, 99, 10**6])], "`opset` must be an integer"
    elif kind == 1:
        argv, fragment = ["--parity-samples", rng.choice([0, -1, -(10**9)])], "`parity_samples` must be an integer"
    elif kind == 2:
        argv, fragment = ["--precision", "int4", "--block-size", rng.choice([0, 8, 48, 100])], "`block_size`"
    else:
        folder = tmp_path / "model"
        fragment = _broken_model_folder(rng, sudoku_model, folder) or str(folder)
        code, _, err = run_cli(["export", folder, out], capsys)
        assert_one_line_error(code, err, fragment)
        assert not out.exists()
        return
    code, _, err = run_cli(["export", sudoku_model, out, *argv], capsys)
    assert_one_line_error(code, err, fragment)
    assert not out.exists()


@pytest.mark.parametrize("argv", [["env", "--json"], ["env", "extra"], ["solve", "m", "--max-steps", "-1"], []])
def test_usage_errors_are_argparses_usage_and_one_error_line(capsys, argv):
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.startswith("usage: hf-reason") and err.strip().split("\n")[-1].startswith("hf-reason")
    assert ": error: " in err.strip().split("\n")[-1]


def test_the_console_script_prints_one_line_too(sudoku_model, tmp_path):
    script = Path(sys.executable).with_name("hf-reason")
    assert script.is_file(), "the console script is installed with the package"
    (tmp_path / "puzzles.jsonl").write_bytes(b'{"puzzle": "1080902"}\n\xff\n')
    (tmp_path / "reports.jsonl").write_text('{"completion": "x"}\n')
    (tmp_path / "taken").write_text("x")
    runs = {
        "solve": (
            [script, "solve", sudoku_model, "--input", tmp_path / "puzzles.jsonl"],
            f"error: {tmp_path / 'puzzles.jsonl'}, line 1: `puzzle`: a 9x9 Sudoku line must have 81 characters",
        ),
        "eval-reports": (
            [script, "eval-reports", tmp_path / "reports.jsonl", "--out", tmp_path / "taken"],
            f"error: --out {tmp_path / 'taken'} is a file; expected a folder",
        ),
        # imports the trainers (TRL, and bitsandbytes, whose import may log a warning of its own)
        "push": ([script, "push", sudoku_model, "org-model", "--dry-run"], "error: `repo_id` must look like"),
    }
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("HF_REASON_DEBUG", None)
    processes = {
        name: subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for name, (argv, _) in runs.items()
    }
    for name, process in processes.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 2 and out == "", (name, err)
        assert err.count("\n") == 1 and err.startswith(runs[name][1]), (name, err)
