"""Code copied into each model folder (so remote code needs no hf-reason) stays identical to its source."""

import importlib.util
import textwrap
from pathlib import Path

from conftest import REPO_ROOT


_spec = importlib.util.spec_from_file_location("check_copies", REPO_ROOT / "utils" / "check_copies.py")
check_copies = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_copies)


def test_every_marked_copy_in_the_package_matches_its_source():
    copies = check_copies.find_copies(REPO_ROOT / "hf_reason")
    # the configs' argument checks of CRSM and meta-attention, at least
    assert len(copies) >= 6
    assert check_copies.check_copies(REPO_ROOT / "hf_reason") == []


def _package(tmp_path: Path, copy_body: str) -> Path:
    root = tmp_path / "hf_reason"
    (root / "a").mkdir(parents=True)
    (root / "a" / "source.py").write_text("def _check(value):\n    return value > 0\n\n\nclass Model:\n    pass\n")
    (root / "b.py").write_text(
        "import os\n\n\n# Copied from hf_reason.a.source._check\n" + copy_body + "\n\n"
        "# Copied from hf_reason.a.source.Model with Model->Other\nclass Other:\n    pass\n"
    )
    return root


def test_a_drifted_copy_is_reported_and_fix_rewrites_it_from_the_source(tmp_path):
    root = _package(tmp_path, "def _check(value):\n    return value >= 0\n")
    assert check_copies.check_copies(root) == ["hf_reason/b.py:5: hf_reason.a.source._check"]
    assert check_copies.check_copies(root, overwrite=True) == ["hf_reason/b.py:5: hf_reason.a.source._check"]
    assert check_copies.check_copies(root) == []
    assert "return value > 0" in (root / "b.py").read_text()
    assert "class Other:" in (root / "b.py").read_text()  # the renamed copy was already right


def test_a_marker_must_name_an_existing_definition(tmp_path):
    root = _package(tmp_path, "def _check(value):\n    return value > 0\n")
    text = (root / "b.py").read_text().replace("source._check", "source._missing")
    (root / "b.py").write_text(text)
    try:
        check_copies.check_copies(root)
    except ValueError as error:
        assert "defines no `_missing`" in str(error)
    else:
        raise AssertionError("a marker naming nothing must be an error")
    (root / "b.py").write_text(textwrap.dedent("# Copied from hf_reason.a.source._check\nX = 1\n"))
    try:
        check_copies.check_copies(root)
    except ValueError as error:
        assert "must be followed by a def or class" in str(error)
    else:
        raise AssertionError("a marker above no definition must be an error")
