"""The app's handlers as plain functions, its models, the Space files and `hf-reason app` / `push --space`."""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from hf_reason.app import load_app_models, load_model, write_space_files
from hf_reason.app.common import page_message, require_gradio
from hf_reason.app.crsm_tab import crsm_generate_page
from hf_reason.app.meta_tab import meta_report_page, prompt_attention
from hf_reason.app.space import space_model_folders
from hf_reason.app.trm_tab import (
    generated_maze,
    generated_sudoku,
    parse_sudoku,
    solve_maze_page,
    solve_sudoku_page,
    trace_steps,
    watch_sudoku_page,
)
from hf_reason.cli import main
from hf_reason.data.sudoku import solve_sudoku, sudoku_from_text
from hf_reason.evaluation.reports import ReportEvaluator


# A puzzle with a unique solution (the generator's, easy level, seed 0), as 9 rows.
EASY = "900400010\n000000390\n005080000\n003007000\n040006009\n001020006\n070008500\n000150040\n016200000"


@pytest.fixture(scope="module")
def models():
    return load_app_models()


def test_sudoku_page_shows_every_supervision_step_and_the_halting_decision_of_solve(models):
    image, message, table = solve_sudoku_page(models.sudoku, EASY, 5)
    assert image is not None and image.size[0] > 100
    assert "halting head" in message and "Input error" not in message
    assert [row[0] for row in table] == [1, 2, 3, 4, 5]
    model = models.sudoku.model
    input_ids, digits, solution = parse_sudoku(EASY, model)
    all_steps = model.solve(torch.tensor([input_ids]), max_steps=5, use_halting=False)
    for row, prediction, q_halt in zip(table, all_steps.step_predictions[:, 0], all_steps.q_halt_logits[:, 0]):
        wrong = int((np.asarray(prediction).reshape(-1) - 1 != solution.reshape(-1)).sum())
        assert row[1] == wrong
        assert row[2] == pytest.approx(float(q_halt), abs=1e-3)
    halting = model.solve(torch.tensor([input_ids]), max_steps=5, use_halting=True)
    assert trace_steps(model, input_ids, 5).steps_used == int(halting.steps[0])


def test_the_sudoku_page_shows_each_step_as_it_is_computed(models):
    frames = list(watch_sudoku_page(models.sudoku, EASY, 3))
    assert [len(table) for _, _, table in frames] == [1, 2, 3]
    assert [message.startswith(f"Step {k} of 3") for k, (_, message, _) in enumerate(frames, 1)] == [True, True, False]
    assert all(image is not None for image, _, _ in frames)
    assert frames[-1][1:] == solve_sudoku_page(models.sudoku, EASY, 3)[1:]
    assert [frame[1] for frame in watch_sudoku_page(models.sudoku, "", 3)] == [
        solve_sudoku_page(models.sudoku, "", 3)[1]
    ]


def test_sudoku_typed_as_one_line_reads_as_the_nine_rows(models):
    line = EASY.replace("\n", "")
    assert parse_sudoku(line, models.sudoku.model)[0] == parse_sudoku(EASY, models.sudoku.model)[0]
    framed = "\n".join(f"{r[:3]} | {r[3:6]} | {r[6:]}" for r in EASY.split("\n"))
    assert parse_sudoku(framed, models.sudoku.model)[0] == parse_sudoku(EASY, models.sudoku.model)[0]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1234567890\n" + "000000000\n" * 8, "row 1 of the Sudoku has 10 cells"),
        (EASY.replace("9", "x", 1), "character 1 of the Sudoku line is 'x'"),
        ("11" + "0" * 79, "has no solution"),
        ("   ", "the Sudoku is empty"),
        ("0" * 80, "81 characters, got 80"),
        ("000\n000", "has 2 rows; expected 9 rows"),
    ],
)
def test_bad_sudoku_gets_a_message_in_the_page(models, text, expected):
    image, message, table = solve_sudoku_page(models.sudoku, text, 3)
    assert image is None and table == []
    assert message.startswith("**Input error:**") and expected in message


def test_bad_step_budget_gets_a_message(models):
    assert "from 1 to 16, got 0" in solve_sudoku_page(models.sudoku, EASY, 0)[1]
    assert "whole number" in solve_sudoku_page(models.sudoku, EASY, "many")[1]


def test_generated_sudoku_by_level_has_one_solution():
    grid, message = generated_sudoku("medium", 3)
    assert "medium" in message and len(grid.split("\n")) == 9
    assert solve_sudoku(sudoku_from_text(grid.replace("\n", "")), limit=2).num_solutions == 1
    grid, message = generated_sudoku("impossible", 0)
    assert grid == "" and "level must be one of" in message


def test_maze_page_draws_the_path_and_bad_mazes_get_messages(models):
    maze, message = generated_maze(models.maze, 1)
    assert "S" in maze and "G" in maze and "15x15" in message
    image, message, table = solve_maze_page(models.maze, maze, 3)
    assert image is not None and "halting head" in message and len(table) == 3
    walled = maze.replace("S", " ").split("\n")
    walled[1] = "#S#" + walled[1][3:]
    walled[2] = "###" + walled[2][3:]
    assert "no path from 'S' to 'G'" in solve_maze_page(models.maze, "\n".join(walled), 3)[1]
    assert "the maze is empty" in solve_maze_page(models.maze, "", 3)[1]
    assert "row 2 of the maze has" in solve_maze_page(models.maze, "#####\n#S G\n#####\n#####\n#####", 3)[1]


def test_crsm_page_reports_the_search_statistics_of_generate(models):
    greedy, mcts, table, tree, message = crsm_generate_page(models.crsm, "What is 2 + 3?", 4, 3)
    model, tokenizer = models.crsm.model, models.crsm.tokenizer
    ids = tokenizer("What is 2 + 3?", return_tensors="pt", add_special_tokens=False)["input_ids"]
    expected = model.generate(ids, max_new_tokens=4, do_sample=False)
    assert greedy == tokenizer.decode(expected[0, ids.shape[1] :], skip_special_tokens=True)
    search = model.generate(
        ids, deliberation="mcts", max_new_tokens=4, num_simulations=3, return_dict_in_generate=True
    )
    assert [row[2] for row in table] == search.chosen_visit_counts[0].tolist()
    assert [row[3] for row in table] == pytest.approx(search.chosen_values[0].tolist(), abs=1e-4)
    assert mcts == tokenizer.decode(search.sequences[0, ids.shape[1] :], skip_special_tokens=True)
    assert tree is not None and "MCTS committed" in message


def _check_visits(node: dict) -> int:
    """Every node has at least its children's visits (each simulation through a node visits one child, or
    stops there); returns the tree's depth."""
    assert node["visits"] >= sum(child["visits"] for child in node["children"]), node
    return 1 + max((_check_visits(child) for child in node["children"]), default=0)


def test_the_crsm_search_tree_is_the_last_steps_search(models):
    model, tokenizer = models.crsm.model, models.crsm.tokenizer
    ids = tokenizer(["What is 2 + 3?", "Plan: add"], return_tensors="pt", padding=True, add_special_tokens=False)
    search = model.generate(
        ids["input_ids"],
        attention_mask=ids["attention_mask"],
        deliberation="mcts",
        max_new_tokens=3,
        num_simulations=12,
        return_dict_in_generate=True,
    )
    assert len(search.search_trees) == 2
    for tree, stats in zip(search.search_trees, search.search_stats):
        last = stats[-1]
        assert {c["token"]: c["visits"] for c in tree["children"]} == {c[0]: c[1] for c in last["children"]}
        chosen = next(c for c in tree["children"] if c["token"] == last["token"])
        assert chosen["q"] == pytest.approx(last["q"]) and tree["token"] == stats[-2]["token"]
        assert _check_visits(tree) >= 3  # the root, its children and nodes expanded below them
    page_tree = crsm_generate_page(models.crsm, "What is 2 + 3?", 3, 12)[3]
    assert page_tree.size[1] > 300  # three levels drawn


def test_a_search_deeper_than_the_recursion_limit_is_returned_whole(models):
    """With one candidate per node every simulation extends a single chain."""
    model, tokenizer = models.crsm.model, models.crsm.tokenizer
    ids = tokenizer("What is 2 + 3?", return_tensors="pt", add_special_tokens=False)["input_ids"]
    simulations = sys.getrecursionlimit() + 200
    search = model.generate(
        ids,
        deliberation="mcts",
        max_new_tokens=1,
        num_simulations=simulations,
        top_k_expansion=1,
        leaf_batch_size=1,
        return_dict_in_generate=True,
    )
    node, depth = search.search_trees[0], 0
    while node["children"]:
        (node,) = node["children"]
        depth += 1
    assert depth == simulations and node["visits"] == 1


@pytest.mark.parametrize("prompt", ["", "   ", None])
def test_empty_prompts_get_a_message(models, prompt):
    assert "the prompt is empty" in crsm_generate_page(models.crsm, prompt, 4, 3)[-1]
    assert "the prompt is empty" in meta_report_page(models.meta_attention, models.critic, prompt, 4)[-1]


def test_meta_page_shows_the_evaluator_and_critic_scores_of_its_report(models):
    report, heatmap, table, message = meta_report_page(models.meta_attention, models.critic, "What is 2 + 3?", 6)
    model, tokenizer = models.meta_attention.model, models.meta_attention.tokenizer
    ids = tokenizer("What is 2 + 3?", return_tensors="pt", add_special_tokens=False)["input_ids"]
    sequences = model.generate(ids, max_new_tokens=6, do_sample=False)
    introspection = model.introspect(sequences, start=ids.shape[1]).to_json(tokenizer)
    scores = ReportEvaluator().score(report, prompt="What is 2 + 3?", introspection=introspection)
    shown = {row[0]: row[1] for row in table}
    assert shown["overall"] == pytest.approx(scores["overall"], abs=1e-4)
    assert shown["coverage"] == pytest.approx(scores["coverage"], abs=1e-4)
    assert 0.0 < shown["self-critic"] < 1.0
    assert heatmap is not None and "untrained critic" in message


def test_prompt_attention_sums_the_introspected_weights_on_prompt_positions(models):
    model, tokenizer = models.meta_attention.model, models.meta_attention.tokenizer
    ids = tokenizer("Plan: add. Step 1: 2 + 3", return_tensors="pt", add_special_tokens=False)["input_ids"]
    sequences = model.generate(ids, max_new_tokens=5, do_sample=False)
    out = model.introspect(sequences, start=ids.shape[1], top_k=3)
    matrix = prompt_attention(out, ids.shape[1])
    assert matrix.shape == (sequences.shape[1] - ids.shape[1], ids.shape[1])
    on_prompt = torch.where(out.attended_positions[0] < ids.shape[1], out.weights[0], 0.0).sum(-1)
    assert matrix.sum(-1) == pytest.approx(on_prompt.numpy(), abs=1e-6)


def test_page_message_never_shows_a_traceback():
    assert page_message(ValueError("bad\n  value")) == "**Input error:** bad value"
    assert page_message(RuntimeError("boom")).startswith("**Unexpected error** (RuntimeError)")


def test_trm_folders_go_to_their_tab_and_onnx_exports_run_on_onnx_runtime(models, tmp_path):
    from hf_reason.export import export_pretrained

    models.sudoku.model.save_pretrained(tmp_path / "sudoku")
    export_pretrained(models.sudoku.model, tmp_path / "onnx", parity_samples=1, progress=False)
    loaded = load_model(tmp_path / "onnx", "trm")
    assert loaded.runtime == "onnxruntime" and "ONNX Runtime" in loaded.describe("--trm")
    onnx_table = solve_sudoku_page(loaded, EASY, 3)[2]
    torch_table = solve_sudoku_page(models.sudoku, EASY, 3)[2]
    assert [row[1] for row in onnx_table] == [row[1] for row in torch_table]
    assert [row[2] for row in onnx_table] == pytest.approx([row[2] for row in torch_table], abs=1e-2)
    with pytest.raises(ValueError, match="holds a 'trm' model; this option takes a 'crsm' model"):
        load_model(tmp_path / "sudoku", "crsm")
    with pytest.raises(ValueError, match="a second sudoku model"):
        load_app_models(trm=[tmp_path / "sudoku", tmp_path / "onnx"])


def test_space_files_make_the_folder_a_gradio_space(models, tmp_path):
    folder = tmp_path / "model"
    models.sudoku.model.save_pretrained(folder)
    (folder / "README.md").write_text("---\nlibrary_name: hf-reason\n---\n# A TRM\n")
    assert sorted(write_space_files(folder)) == ["README.md", "app.py", "requirements.txt"]
    card = (folder / "README.md").read_text()
    for line in ("sdk: gradio", "app_file: app.py", "library_name: hf-reason"):
        assert line in card
    assert card.rstrip().endswith("# A TRM")
    assert "hf-reason[app]" in (folder / "requirements.txt").read_text()
    assert space_model_folders(folder) == {"trm": str(folder)}
    with pytest.raises(ValueError, match="holds no model for the app"):
        space_model_folders(tmp_path)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _served_config(command: list, cwd, port: int, env: dict) -> str:
    """Runs `command` (a server) until `/config` answers on `port`; returns that page's JSON text."""
    server = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=5) as response:
                    return response.read().decode()
            except OSError:
                time.sleep(0.5)
        output = server.stdout.read1().decode() if server.poll() is not None else ""
        raise AssertionError(f"the server never answered on port {port}: {output}")
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_space_app_serves_the_page(models, tmp_path):
    """`python app.py` in the Space folder starts the app on the folder's model, as a Space runs it."""
    folder = tmp_path / "space"
    models.sudoku.model.save_pretrained(folder)
    write_space_files(folder)
    port = _free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "HF_HUB_OFFLINE": "1"}
    page = _served_config([sys.executable, "app.py"], folder, port, env)
    assert f"Model: `{folder}` on PyTorch" in page and "Untrained demo model" in page  # the maze tab's


def test_app_command_serves_the_page_with_the_given_models(models, tmp_path):
    models.maze.model.save_pretrained(tmp_path / "maze")
    port = _free_port()
    command = [sys.executable, "-m", "hf_reason.cli", "app", "--trm", str(tmp_path / "maze"), "--port", str(port)]
    page = _served_config(command, tmp_path, port, {**os.environ, "HF_HUB_OFFLINE": "1"})
    assert f"Model: `{tmp_path / 'maze'}` on PyTorch" in page and "TRM: Sudoku" in page


def test_the_startup_bench_prints_its_comparison_line():
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "bench/app_startup.py", "--repeats", "1"],
        cwd=root,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.fullmatch(
        r"app cold start \(median of 1\): ours [\d.]+ s, reference [\d.]+ s \(bare Gradio Blocks\), ratio [\d.]+; "
        r"worst [\d.]+ s, goal < 10 s: (met|not met)\n",
        result.stdout,
    ), result.stdout


def test_push_dry_run_with_space_lists_the_space_files(models, tmp_path, capsys):
    models.crsm.model.save_pretrained(tmp_path / "crsm")
    models.crsm.tokenizer.save_pretrained(tmp_path / "crsm")
    assert main(["push", str(tmp_path / "crsm"), "me/crsm-demo", "--space", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "public Space me/crsm-demo" in out
    for name in ("app.py", "requirements.txt", "README.md"):
        assert f"  {name}  (" in out
    assert "sdk: gradio" in out


def test_app_command_names_a_missing_folder(tmp_path, capsys):
    assert main(["app", "--trm", str(tmp_path / "nowhere")]) == 2
    assert f"--trm {tmp_path / 'nowhere'}: no such folder" in capsys.readouterr().err


def test_without_gradio_the_app_says_which_extra_installs_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)
    with pytest.raises(ImportError, match=r"pip install hf-reason\[app\]"):
        require_gradio()
    assert main(["app"]) == 2
    assert "pip install hf-reason[app]" in capsys.readouterr().err


def test_the_package_imports_without_gradio():
    code = "import sys; sys.modules['gradio'] = None; import hf_reason.app, hf_reason.cli; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr


def test_crsm_export_runs_greedy_and_mcts_on_onnx_runtime(models, tmp_path):
    from hf_reason.export import export_pretrained

    models.crsm.model.save_pretrained(tmp_path / "crsm")
    models.crsm.tokenizer.save_pretrained(tmp_path / "crsm")
    export_pretrained(tmp_path / "crsm", tmp_path / "onnx", parity_samples=1, progress=False)
    loaded = load_model(tmp_path / "onnx", "crsm")
    assert loaded.runtime == "onnxruntime"
    onnx_page = crsm_generate_page(loaded, "What is 2 + 3?", 4, 3)
    torch_page = crsm_generate_page(models.crsm, "What is 2 + 3?", 4, 3)
    assert onnx_page[0] == torch_page[0] and onnx_page[1] == torch_page[1]
    assert [row[2] for row in onnx_page[2]] == [row[2] for row in torch_page[2]]


def test_meta_attention_export_writes_the_report_on_onnx_runtime_without_a_heatmap(models, tmp_path):
    from hf_reason.export import export_pretrained

    models.meta_attention.model.save_pretrained(tmp_path / "meta")
    models.meta_attention.tokenizer.save_pretrained(tmp_path / "meta")
    export_pretrained(tmp_path / "meta", tmp_path / "onnx", parity_samples=1, progress=False)
    loaded = load_model(tmp_path / "onnx", "meta_attention")
    report, heatmap, table, message = meta_report_page(loaded, models.critic, "What is 2 + 3?", 5)
    expected = meta_report_page(models.meta_attention, models.critic, "What is 2 + 3?", 5)
    assert report == expected[0] and heatmap is None and "No heat-map" in message
    assert dict(map(tuple, table))["coverage"] == dict(map(tuple, expected[2]))["coverage"]
