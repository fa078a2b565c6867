# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""What the commands read and where they write, checked before any work starts: JSONL files, output folders.

Each check raises `CLIError` with a message that names the file, the line and the field and says what was
expected; `hf_reason.cli.main` prints it as one line.
"""

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional


# The forms `hf-reason solve` reads puzzles in (`hf_reason.cli.puzzles`): "auto" follows the model's config.
PUZZLE_FORMATS = ("auto", "sudoku", "maze", "arc", "tokens")


class CLIError(Exception):
    """A bad input to a command: the message names what is wrong (file, line, field) and what was expected."""


def describe_value(value: Any) -> str:
    """A short name for a JSON value's type, as error messages say what they got."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {json.dumps(value)}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}" + ("..." if len(value) > 40 else "")
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def read_jsonl(path: str, what: str) -> Iterator[tuple[str, Any]]:
    """Yields the JSON value of every non-blank line of `path` (`"-"`: standard input) as `(where, value)`,
    where `where` is `"<file>, line <n>"` for the messages about that value.

    Raises `CLIError` for a missing file, a folder, a line that is not UTF-8 or not JSON (when the
    iteration reaches it, so that a caller checking each value reports the first bad line), and a file
    without any `what` (e.g. "puzzles").
    """
    if path == "-":
        name = "<stdin>"
        stream = getattr(sys.stdin, "buffer", None)
        data = stream.read() if stream is not None else sys.stdin.read().encode("utf-8")
    else:
        name, file = path, Path(path)
        if file.is_dir():
            raise CLIError(f"{name} is a folder; expected a JSONL file of {what}.")
        if not file.is_file():
            raise CLIError(f"{name}: no such file (expected a JSONL file of {what}).")
        data = file.read_bytes()
    found = False
    for number, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        where = f"{name}, line {number}"
        try:
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as error:
            raise CLIError(
                f"{where}: not UTF-8 text (byte 0x{raw[error.start]:02x} at column {error.start + 1})."
            ) from None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise CLIError(f"{where}: invalid JSON ({error.msg} at column {error.colno}).") from None
        except RecursionError:
            raise CLIError(f"{where}: invalid JSON (nested too deeply).") from None
        found = True
        yield where, value
    if not found:
        raise CLIError(f"{name} holds no {what} (every line is blank).")


def check_object(value: Any, where: str, what: str) -> dict:
    """`value` if it is a JSON object, else `CLIError` saying that line `where` should hold one `what`."""
    if not isinstance(value, dict):
        raise CLIError(f"{where}: expected a JSON object ({what}), got {describe_value(value)}.")
    return value


def check_string(record: dict, key: str, where: str, *, required: bool = False) -> Optional[str]:
    """`record[key]` if it is a string (or absent / null where not `required`), else `CLIError` naming the field."""
    value = record.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        got = "nothing" if key not in record else describe_value(value)
        raise CLIError(f"{where}: `{key}` must be a string, got {got}.")
    return value


def check_output_folder(path: str, flag: str) -> Path:
    """`path` as a folder to write into (created later): `CLIError` when it, or a folder above it, is a file."""
    folder = Path(path)
    for parent in (folder, *folder.parents):
        if not parent.exists():
            continue
        if parent.is_dir():
            break
        if parent == folder:
            raise CLIError(f"{flag} {path} is a file; expected a folder (created if missing).")
        raise CLIError(f"{flag} {path} lies under {parent}, which is a file; expected a folder.")
    return folder
