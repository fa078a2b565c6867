"""The curated set's sources: the builder reproduces the shipped file and refuses a malformed entry by name."""

import importlib.util
import shutil
from pathlib import Path

import pytest
import tomllib
import yaml

from hf_reason.data.curated_tasks import CuratedTaskError


REPO_ROOT = Path(__file__).resolve().parents[1]
SENTINEL = "the previous tasks.jsonl\n"


@pytest.fixture(scope="module")
def builder():
    path = REPO_ROOT / "utils" / "build_curated_tasks.py"
    spec = importlib.util.spec_from_file_location("build_curated_tasks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def sources(builder, tmp_path):
    """A copy of the source files to break, and an existing output file the builder must leave alone."""
    folder = tmp_path / "sources"
    shutil.copytree(builder.SOURCES_DIR, folder)
    out = tmp_path / "out" / "tasks.jsonl"
    out.parent.mkdir()
    out.write_text(SENTINEL)
    return folder, out


def _edit(folder, category, mutate):
    path = folder / f"{category}.yaml"
    items = yaml.safe_load(path.read_text(encoding="utf-8"))
    mutate(items)
    path.write_text(yaml.safe_dump(items, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _build_fails(builder, folder, out):
    with pytest.raises(CuratedTaskError) as info:
        builder.main(["--sources", str(folder), "--out", str(out)])
    assert out.read_text() == SENTINEL, "the builder wrote despite a failed check"
    assert [p.name for p in out.parent.iterdir()] == ["tasks.jsonl"], "the builder left a temporary file"
    return info.value


def test_rebuilding_from_the_sources_reproduces_the_shipped_file_byte_for_byte(builder, tmp_path):
    out = tmp_path / "tasks.jsonl"
    builder.main(["--out", str(out)])
    built, shipped = out.read_bytes(), builder.TASKS_PATH.read_bytes()
    if built != shipped:
        pairs = zip(built.splitlines(), shipped.splitlines())
        line = next((i for i, (a, b) in enumerate(pairs, 1) if a != b), min(len(built), len(shipped)))
        pytest.fail(
            f"tasks.jsonl and hf_reason/data/curated/sources/ differ (first at line {line}): edit the sources, "
            "then run `python utils/build_curated_tasks.py` and commit both"
        )


def _set(key, value, index=0):
    return lambda items: items[index].update({key: value})


@pytest.mark.parametrize(
    "category, mutate, entry, field",
    [
        ("math", lambda items: items[0].pop("monitor"), "math-train-meet", "monitor"),
        ("diagnostics", _set("monitr", "typo"), "diagnostics-car-wont-start", "monitr"),
        ("math", _set("answer", 2), "math-train-meet", "answer"),
        ("math", _set("id", "diagnostics-train-meet"), "diagnostics-train-meet", "id"),
        ("narrative", lambda items: items[1].update(id=items[0]["id"]), "narrative-umbrella", "id"),
        ("math", lambda items: items[0]["reflection_memo"].pop(), "math-train-meet", "reflection_memo"),
        (
            "math",
            lambda items: items[0]["reflection_memo"][0].update(score=1),
            "math-train-meet",
            "reflection_memo[0].score",
        ),
        (
            "math",
            lambda items: items[0]["reflection_memo"][0].update(verdict="maybe"),
            "math-train-meet",
            "reflection_memo[0].verdict",
        ),
        ("math", lambda items: items[0]["hints"][0].update(weight=0.5), "math-train-meet", "hints[0].weight"),
        ("math", lambda items: items[0]["hints"][0].pop("why"), "math-train-meet", "hints[0].why"),
        ("math", lambda items: items[0]["hints"][0].update(layer="deep"), "math-train-meet", "hints[0].layer"),
        ("math", _set("focus_terms", ["zebra"]), "math-train-meet", "focus_terms"),
        ("math", lambda items: items[0]["validator"].update(kind="regex"), "math-train-meet", "validator.kind"),
        # a hint the Reflection does not cite as stated (the Reflection cites `needs @ late`)
        ("planning", lambda items: items[0]["hints"][1].update(layer="early"), "planning-schedule-chores", "hints[1]"),
        # a validator that rejects the gold completion (whose answer is 2)
        ("math", lambda items: items[0]["validator"]["config"].update(answer=3), "math-train-meet", "validator"),
        (
            "programming",
            lambda items: items[0].update(code="def count_multiples(n):\n    return n // 3"),
            "programming-fizz-count",
            "validator",
        ),
    ],
)
def test_a_malformed_source_entry_names_file_entry_and_field_and_nothing_is_written(
    builder, sources, category, mutate, entry, field
):
    folder, out = sources
    path = _edit(folder, category, mutate)
    error = _build_fails(builder, folder, out)
    assert (error.source, error.entry, error.field) == (str(path), entry, field), str(error)
    assert f"{path}, line {error.line}, entry `{entry}`, field `{field}`: " in str(error)
    assert path.read_text(encoding="utf-8").splitlines()[error.line - 1].startswith("- "), "line of the list item"


def test_a_category_below_the_minimum_or_a_stray_or_missing_file_is_refused(builder, sources):
    folder, out = sources
    keep = builder.MIN_HAND_WRITTEN_PER_CATEGORY - 1
    path = _edit(folder, "narrative", lambda items: items.__delitem__(slice(keep, None)))
    error = _build_fails(builder, folder, out)
    assert (error.source, error.field) == (str(path), "<entries>") and "at least 8" in str(error)
    shutil.copy(folder / "math.yaml", path)
    (folder / "poetry.yaml").write_text("[]\n")
    error = _build_fails(builder, folder, out)
    assert (error.source, error.field) == (str(folder / "poetry.yaml"), "<file>")
    (folder / "poetry.yaml").unlink()
    (folder / "math.yaml").unlink()
    error = _build_fails(builder, folder, out)
    assert (error.source, error.field) == (str(folder / "math.yaml"), "<file>")


def test_a_key_written_twice_in_one_entry_is_refused_not_overwritten(builder, sources):
    folder, out = sources
    path = folder / "math.yaml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    plan = next(i for i, line in enumerate(lines) if line.startswith("  plan:"))
    lines.insert(plan, "  plan: A second plan that would silently replace the first.\n")
    path.write_text("".join(lines), encoding="utf-8")
    error = _build_fails(builder, folder, out)
    assert (error.source, error.line, error.field) == (str(path), plan + 2, "<yaml>")
    assert "'plan' twice" in str(error)


def test_the_package_ships_the_built_set_and_neither_the_builder_nor_the_sources():
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["hf_reason"]
    shipped = {path for pattern in patterns for path in (REPO_ROOT / "hf_reason").glob(pattern)}
    curated = REPO_ROOT / "hf_reason" / "data" / "curated"
    assert curated / "tasks.jsonl" in shipped
    assert not [path for path in shipped if path.is_relative_to(curated / "sources")]
    assert not list(curated.rglob("*.py")), "builder code belongs in utils/, outside the installed package"
