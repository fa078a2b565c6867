"""Running `hf-reason` in-process for the CLI tests, and what every failure must look like."""

from hf_reason.cli import main


def run_cli(argv, capsys) -> tuple[int, str, str]:
    """`hf-reason *argv` through `main`, as (exit status, stdout, stderr); argparse's exits included."""
    capsys.readouterr()
    try:
        code = main([str(arg) for arg in argv])
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *fragments: str, status: int = 2) -> str:
    """A refused input: exit `status`, no traceback, and exactly one line, `error: ...`, holding `fragments`."""
    assert "Traceback" not in err, err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert code == status, (code, err)
    return lines[0]
