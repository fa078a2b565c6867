"""The distribution installs what it promises: every package, trainers as hf_reason.trainers."""

import importlib.metadata
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import hf_reason


REPO_ROOT = Path(__file__).resolve().parents[1]


def _declared_packages() -> list[str]:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    return pyproject["tool"]["setuptools"]["packages"]


def test_every_package_folder_is_declared():
    found = {
        ".".join(path.parent.relative_to(REPO_ROOT).parts) for path in (REPO_ROOT / "hf_reason").rglob("__init__.py")
    }
    found.add("hf_reason.trainers")  # mapped from the top-level trainers/ folder
    found.add("hf_reason.model_cards")  # mapped from the top-level model_cards/ folder (templates)
    assert found == set(_declared_packages())


def test_trainers_import_as_hf_reason_trainers_only():
    import hf_reason.trainers

    assert Path(hf_reason.trainers.__file__).parent == REPO_ROOT / "trainers"
    # from outside the repository, no top-level `trainers` module exists
    code = "import importlib.util, sys; sys.exit(importlib.util.find_spec('trainers') is not None)"
    assert subprocess.run([sys.executable, "-c", code], cwd="/").returncode == 0


def _declared_requirement(name: str) -> Requirement:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    requirements = [Requirement(r) for r in pyproject["project"]["dependencies"]]
    return next(r for r in requirements if canonicalize_name(r.name) == canonicalize_name(name))


def test_console_script_runs():
    bindir = Path(sys.executable).parent
    result = subprocess.run([str(bindir / "hf-reason"), "env"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    versions = json.loads(result.stdout)
    # what it reports is the installed stack, inside the range pyproject.toml declares
    for name in ("transformers", "trl", "accelerate"):
        assert versions[name] == importlib.metadata.version(name)
        requirement = _declared_requirement(name)
        assert requirement.specifier.contains(versions[name], prereleases=True), (name, versions[name], requirement)


def test_version_matches_distribution_metadata():
    import importlib.metadata

    assert importlib.metadata.version("hf-reason") == hf_reason.__version__
