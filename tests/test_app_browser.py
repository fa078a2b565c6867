"""`hf-reason app` in a real headless Chromium: solve a Sudoku, see a bad one's message, solve a maze, generate
with CRSM and with the meta-attention model; screenshots of each. (Its cold start is measured by
bench/app_startup.py.)"""

import importlib.util
import urllib.request
from pathlib import Path

import pytest


REPO_ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("app_screenshots", REPO_ROOT / "utils" / "app_screenshots.py")
app_screenshots = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(app_screenshots)


@pytest.fixture(scope="module")
def served_app():
    """The app with its small demo models on a free port, once its page answers."""
    pytest.importorskip("gradio", reason="the app needs gradio (pip install hf-reason[app])")
    from hf_reason.app import launch_app

    port = app_screenshots.free_port()
    app = launch_app(port=port, block=False)
    url = f"http://127.0.0.1:{port}"
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
    yield {"url": url, "app": app}
    app.close()


@pytest.fixture(scope="module")
def browser():
    path, driver_path, reason = app_screenshots.find_browser()
    if path is None:
        pytest.skip(f"no headless browser for the app's end-to-end test: {reason}")
    driver = app_screenshots.start_driver(path, driver_path)
    yield driver
    driver.quit()


def test_the_page_solves_and_generates_with_each_family(served_app, browser, tmp_path_factory):
    out = tmp_path_factory.mktemp("app_screenshots")
    result = app_screenshots.drive_app(browser, served_app["url"], out)
    texts = result["texts"]
    assert "The halting head" in texts["sudoku"] and "at that step the board has" in texts["sudoku"]
    assert texts["sudoku_table"].splitlines()[::4] == ["1", "2", "3", "4", "5", "6"]  # every step's row
    assert texts["sudoku_3_steps"].splitlines()[::4] == ["1", "2", "3"]
    assert "Input error" in texts["sudoku_bad"] and "row 1 of the Sudoku has 10 cells" in texts["sudoku_bad"]
    assert "Traceback" not in browser.page_source
    assert "path drawn at that step" in texts["maze"]
    assert "MCTS committed" in texts["crsm"]
    assert "evaluator overall" in texts["meta"] and "self-critic" in texts["meta"]
    assert sorted(result["screenshots"]) == ["crsm", "maze", "meta_attention", "sudoku", "sudoku_bad_input"]
    for path in result["screenshots"].values():
        assert path.stat().st_size > 10_000, path  # a rendered page, not an empty capture
