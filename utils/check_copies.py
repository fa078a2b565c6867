# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Checks that code marked `# Copied from hf_reason.<module>.<name>` is still identical to its source.

A model folder may import only torch, transformers and its own files, so that a checkpoint saved
with its code loads with `trust_remote_code=True` where hf-reason is not installed. Small helpers
(the configs' argument checks) are therefore copied into each folder. As in transformers, each
copy carries a marker on the line above it:

    # Copied from hf_reason.models.trm.configuration_trm._check_int
    def _check_int(name, value, minimum): ...

optionally with renames: `# Copied from hf_reason.models.trm.modeling_trm.TRMSwiGLU with TRM->CRSM`.

    python utils/check_copies.py                      # lists the copies that drifted (exit 1)
    python utils/check_copies.py --fix_and_overwrite  # rewrites them from their source (`make fix-copies`)
"""

import argparse
import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path


REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "hf_reason"
MARKER = re.compile(r"^(?P<indent>\s*)# Copied from (?P<target>hf_reason(?:\.\w+)+)(?: with (?P<renames>.+))?\s*$")


@dataclass
class Copy:
    path: Path
    start: int  # first line of the copied definition (0-based), the line after the marker
    end: int  # one past its last line
    target: str
    renames: list[tuple[str, str]]


def _definition_span(tree: ast.Module, lineno: int) -> tuple[int, int]:
    """(first, one past last) 0-based lines of the top-level or nested definition starting at `lineno` (1-based)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            if first == lineno:
                return first - 1, node.end_lineno
    raise ValueError(f"line {lineno}: a `# Copied from` marker must be followed by a def or class")


def _source_of(target: str, package_root: Path) -> str:
    """The source lines of `hf_reason.a.b.name` (a module-level def or class), read without importing it."""
    module, _, name = target.rpartition(".")
    path = package_root.parent / (module.replace(".", "/") + ".py")
    if not path.is_file():
        raise ValueError(f"`# Copied from {target}`: no module file {path}")
    text = path.read_text(encoding="utf-8")
    for node in ast.parse(text).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            return "".join(text.splitlines(keepends=True)[first - 1 : node.end_lineno])
    raise ValueError(f"`# Copied from {target}`: {path} defines no `{name}` at module level")


def find_copies(package_root: Path) -> list[Copy]:
    copies = []
    for path in sorted(package_root.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        tree = None
        for index, line in enumerate(lines):
            match = MARKER.match(line)
            if match is None:
                continue
            tree = tree or ast.parse("".join(lines))
            try:
                start, end = _definition_span(tree, index + 2)
            except ValueError as error:
                raise ValueError(f"{path}:{index + 1}: {error}") from None
            renames = []
            for pair in (match.group("renames") or "").split(","):
                if pair.strip():
                    old, arrow, new = pair.strip().partition("->")
                    if not arrow or not old.strip() or not new.strip():
                        raise ValueError(
                            f"{path}:{index + 1}: renames are written `Old->New[, Old->New]`, got {pair!r}"
                        )
                    renames.append((old.strip(), new.strip()))
            copies.append(Copy(path, start, end, match.group("target"), renames))
    return copies


def expected_text(copy: Copy, package_root: Path) -> str:
    text = _source_of(copy.target, package_root)
    for old, new in copy.renames:
        text = text.replace(old, new)
    return text


def check_copies(package_root: Path = REPO_ROOT / PACKAGE, overwrite: bool = False) -> list[str]:
    """The copies under `package_root` that differ from their source, as `path:line: target`;
    with `overwrite`, rewrites each from its source (and returns them too)."""
    drifted = []
    for copy in reversed(find_copies(package_root)):  # bottom-up: rewriting one keeps the others' lines
        lines = copy.path.read_text(encoding="utf-8").splitlines(keepends=True)
        current = "".join(lines[copy.start : copy.end])
        expected = expected_text(copy, package_root)
        if current != expected:
            drifted.append(f"{copy.path.relative_to(package_root.parent)}:{copy.start + 1}: {copy.target}")
            if overwrite:
                lines[copy.start : copy.end] = [expected]
                copy.path.write_text("".join(lines), encoding="utf-8")
    return sorted(drifted)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fix_and_overwrite", action="store_true", help="rewrite drifted copies from their source")
    args = parser.parse_args(argv)
    drifted = check_copies(overwrite=args.fix_and_overwrite)
    if drifted and not args.fix_and_overwrite:
        print("These copies differ from their source (run `make fix-copies`):\n" + "\n".join(drifted))
        return 1
    if drifted:
        print("Rewrote from their source:\n" + "\n".join(drifted))
    return 0


if __name__ == "__main__":
    sys.exit(main())
