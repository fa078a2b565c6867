"""`hf-reason export` and `export_pretrained` refuse bad options and broken model folders up front, in one line."""

import pytest
import torch
from cli_testing import assert_one_line_error, run_cli
from conftest import tiny_trm_config

from hf_reason import TRMForPuzzleSolving
from hf_reason.export import export_pretrained


@pytest.fixture(scope="module")
def trm_dir(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("export") / "trm"
    TRMForPuzzleSolving(tiny_trm_config()).save_pretrained(path)
    return path


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--opset", "3"], "`opset` must be an integer from 12 to 23; got 3."),
        (["--opset", "24"], "`opset` must be an integer from 12 to 23; got 24."),
        (["--opset", "0"], "`opset` must be an integer from 12 to 23; got 0."),
        (["--precision", "int4", "--opset", "17"], "INT4 with quantized embedding tables needs `opset` >= 18; got 17"),
        (["--parity-samples", "0"], "`parity_samples` must be an integer >= 1, got 0."),
        (["--parity-samples", "-2"], "`parity_samples` must be an integer >= 1, got -2."),
    ],
)
def test_bad_options_are_one_line_before_anything_is_traced(trm_dir, tmp_path, capsys, flags, message):
    out = tmp_path / "out"
    code, stdout, err = run_cli(["export", trm_dir, out, *flags], capsys)
    assert_one_line_error(code, err, message)
    assert stdout == "" and not out.exists()


def test_the_library_checks_the_same_before_tracing(tmp_path):
    model = TRMForPuzzleSolving(tiny_trm_config())
    for kwargs, message in (
        ({"opset": 3}, "`opset` must be an integer from 12 to 23"),
        ({"opset": 18.0}, "`opset` must be an integer"),
        ({"opset": True}, "`opset` must be an integer"),
        ({"parity_samples": 0}, "`parity_samples` must be an integer >= 1"),
    ):
        with pytest.raises(ValueError, match=message):
            export_pretrained(model, tmp_path / "out", progress=False, **kwargs)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file; an export writes a folder"):
        export_pretrained(model, tmp_path / "file", progress=False)
    assert not (tmp_path / "out").exists()


def test_a_truncated_weights_file_is_named(trm_dir, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in trm_dir.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    code, _, err = run_cli(["export", broken, tmp_path / "out"], capsys)
    assert_one_line_error(code, err, f"{weights} is not a whole safetensors file (truncated or corrupted")
    weights.unlink()
    code, _, err = run_cli(["export", broken, tmp_path / "out"], capsys)
    assert_one_line_error(code, err, f"{broken} has no safetensors weights")
    (broken / "config.json").unlink()
    code, _, err = run_cli(["export", broken, tmp_path / "out"], capsys)
    assert_one_line_error(code, err, f"{broken} has no config.json")
    assert not (tmp_path / "out").exists()


def test_out_dir_that_is_a_file_is_refused(trm_dir, tmp_path, capsys):
    (tmp_path / "taken").write_text("keep me")
    code, _, err = run_cli(["export", trm_dir, tmp_path / "taken"], capsys)
    assert_one_line_error(code, err, f"`out_dir` {tmp_path / 'taken'} is a file")
    assert (tmp_path / "taken").read_text() == "keep me"
