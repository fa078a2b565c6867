"""The DSL search finds planted programs, respects its budget, and runs tasks in budgeted processes."""

import time

import numpy as np
import pytest

from hf_reason.arc.dsl import PRIMITIVES, parse_program
from hf_reason.arc.parallel import solve_tasks_with_dsl
from hf_reason.arc.registry import GRID, primitive
from hf_reason.arc.search import DSLSearchConfig, search_programs
from hf_reason.data.arc import ArcTask


def planted_task(text, seed=0, shape=(5, 6), num_train=3):
    """Random grids (colours 0..3, objects of colour 1 and 2) and the planted program's outputs."""
    program = parse_program(text)
    rng = np.random.default_rng(seed)
    grids = []
    for _ in range(num_train + 1):
        grid = rng.integers(0, 3, shape)
        grid[rng.random(shape) < 0.4] = 0
        grids.append(grid)
    train = [(g, program(g)) for g in grids[:num_train]]
    return ArcTask("planted", tuple(train), (grids[-1],), (program(grids[-1]),))


PLANTED = [
    # depth 1
    "flip_lr(input)",
    "gravity(input, direction='left')",
    # depth 2
    "rot90(crop_to_content(input))",
    "map_colours(transpose(input), mapping={1: 7, 2: 4})",  # a fitted colour map on top
    "crop(pick(objects(input, connectivity=8, multicolour=True), which='largest'), content='object')",
    # depth 3
    "tile(flip_ud(keep_colour(input, colour=2)), rows=1, cols=2)",
    "upscale(rot180(remove_colour(input, colour=1)), factor=2)",
]


# the planted programs' primitives among decoys of every type: the full vocabulary at depth 3 takes
# minutes of CPU per task, too slow for a unit test (bench/arc.py searches the full vocabulary)
VOCABULARY = [
    *("rot90", "rot180", "flip_lr", "flip_ud", "transpose", "crop_to_content", "tile", "upscale"),
    *("keep_colour", "remove_colour", "gravity", "objects", "pick", "crop", "map_colours", "fill_enclosed"),
    *("filter_objects", "count"),
]


@pytest.mark.parametrize("text", PLANTED)
def test_search_finds_planted_programs_and_predicts_the_test_output(text):
    task = planted_task(text)
    config = DSLSearchConfig(max_size=3, cpu_seconds=30, primitives=VOCABULARY)
    result = search_programs(task.train, task.test_inputs, config)
    assert result.solutions, f"nothing found for {text}"
    best = result.solutions[0].program
    assert best.size <= parse_program(text).size + (1 if "map_colours" in text else 0)
    # the program found is printable and re-runnable: parsed back, it maps every pair
    rerun = parse_program(str(best))
    for x, y in task.train:
        np.testing.assert_array_equal(rerun(x), y)
    assert any(np.array_equal(a, task.test_outputs[0]) for a in result.attempts[0])
    assert len(result.attempts[0]) <= 2


def test_solutions_are_ranked_shortest_then_most_general():
    task = planted_task("flip_lr(input)", seed=3)
    result = search_programs(task.train, task.test_inputs, DSLSearchConfig(max_size=2, cpu_seconds=60))
    keys = [c.rank_key for c in result.solutions]
    assert keys == sorted(keys) and str(result.solutions[0].program) == "flip_lr(input)"
    # distinct attempts: no grid twice
    attempts = result.attempts[0]
    assert len({(a.shape, a.tobytes()) for a in attempts}) == len(attempts)


def test_search_stops_at_its_cpu_budget():
    # outputs no program can make (random colours of another shape): the search runs until stopped
    rng = np.random.default_rng(1)
    train = [(rng.integers(0, 10, (12, 12)), rng.integers(0, 10, (7, 5))) for _ in range(3)]
    start = time.process_time()
    result = search_programs(train, [rng.integers(0, 10, (12, 12))], DSLSearchConfig(max_size=4, cpu_seconds=0.5))
    spent = time.process_time() - start
    assert result.timed_out and not result.solutions and result.attempts == [[]]
    assert 0.5 <= result.cpu_seconds < 1.5 and spent < 1.5


def test_observational_equivalence_prunes_equal_programs():
    task = planted_task("rot180(input)", seed=2)
    result = search_programs(task.train, task.test_inputs, DSLSearchConfig(max_size=2, cpu_seconds=60))
    # rot90(rot90(x)), flip_lr(flip_ud(x)), ... all equal rot180(x): only the shortest is kept
    assert [str(c.program) for c in result.solutions].count("rot180(input)") == 1
    assert not any(str(c.program).startswith("rot90(rot90") for c in result.solutions)
    assert result.distinct_values < result.candidates_evaluated


def test_config_is_checked():
    with pytest.raises(ValueError, match="max_size"):
        DSLSearchConfig(max_size=0)
    with pytest.raises(ValueError, match="cpu_seconds"):
        DSLSearchConfig(cpu_seconds=0)
    with pytest.raises(ValueError, match="unknown names"):
        DSLSearchConfig(primitives=["rot91"])


def test_parallel_solving_keeps_task_order_and_budgets():
    tasks = [planted_task("flip_ud(input)", seed=4), planted_task("transpose(input)", seed=5)]
    seen = []
    results = solve_tasks_with_dsl(
        tasks, DSLSearchConfig(max_size=2, cpu_seconds=20), workers=2, on_result=lambda r: seen.append(r.task_id)
    )
    assert [str(r.solutions[0].program) for r in results] == ["flip_ud(input)", "transpose(input)"]
    assert len(seen) == 2 and all(r.cpu_seconds < 20.5 for r in results)


def _test_only_sleeps(grid):
    """On 5x7 grids never returns in time, without using CPU (the CPU timer cannot stop it); elsewhere it
    does not apply."""
    if grid.shape == (5, 7):
        time.sleep(600)
    return None


def test_a_hung_worker_is_killed_and_the_other_tasks_finish():
    # registered here only: every other search in this module runs over the real primitives
    primitive(GRID, GRID)(_test_only_sleeps)
    try:
        hung = planted_task("flip_lr(input)", seed=6, shape=(5, 7))
        fine = planted_task("flip_lr(input)", seed=7)
        config = DSLSearchConfig(max_size=1, cpu_seconds=0.3, primitives=["_test_only_sleeps", "flip_lr"])
        start = time.monotonic()
        # with one worker the hung task blocks the pool until it is killed; the next task then runs in a fresh pool
        results = solve_tasks_with_dsl([hung, fine], config, workers=1, wall_grace_seconds=2.0, start_method="fork")
        assert time.monotonic() - start < 60
        assert results[0].timed_out and results[0].attempts == []
        assert [str(c.program) for c in results[1].solutions] == ["flip_lr(input)"]
    finally:
        PRIMITIVES.pop("_test_only_sleeps")


def test_bench_scores_a_dsl_run_on_the_validation_split(tmp_path):
    """bench/arc.py end to end on two validation tasks with a tiny budget: submission, scores, summary and
    programs are written, and no evaluation-set ledger is (the validation split is not an evaluation set)."""
    import json
    import subprocess
    import sys

    command = [sys.executable, "bench/arc.py", "--split", "training-validation", "--methods", "dsl"]
    command += ["--max_tasks", "2", "--dsl_cpu_seconds", "1", "--dsl_max_size", "1", "--workers", "1"]
    done = subprocess.run(
        [*command, "--output_dir", str(tmp_path)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "arc training-validation dsl: pass@2" in done.stdout
    out = tmp_path / "training-validation" / "dsl"
    submission = json.loads((out / "submission.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert len(submission) == 2 and summary["num_tasks"] == 2
    assert all(set(entry) == {"attempt_1", "attempt_2"} for entries in submission.values() for entry in entries)
    assert (out / "programs.json").is_file() and not (tmp_path / "evaluation_ledger.jsonl").exists()
