# Copyright 2026 The hf-reason Authors. Licensed under the Apache License, Version 2.0.
"""Drives `hf-reason app` in a headless Chromium and saves a screenshot of each tab.

The browser test (tests/test_app_browser.py) runs the same flow; this script writes the README's pictures:

    python utils/app_screenshots.py --out docs/images [--trm DIR] [--crsm DIR] [--meta DIR]

The browser flow needs the OS's Chromium and chromedriver (Debian: `apt-get install chromium chromium-driver`) and
selenium (`pip install -e .[dev]`); the browser is found on PATH, or through CHROMIUM_BINARY and
CHROMEDRIVER.
"""

import argparse
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Optional


BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
SUDOKU_ROWS_WITH_TEN_CELLS = "1234567890\n" + "000000000\n" * 8
WAIT_SECONDS = 60


def find_browser() -> tuple[Optional[str], Optional[str], str]:
    """`(browser, chromedriver, reason)`: the paths found, or None with the reason they were not."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return None, None, "selenium is not installed (pip install -e .[dev])"
    browser = os.environ.get("CHROMIUM_BINARY") or next(filter(None, map(shutil.which, BROWSER_NAMES)), None)
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    for name, path in (("CHROMIUM_BINARY", browser), ("CHROMEDRIVER", driver)):
        if path is not None and not os.access(path, os.X_OK):
            return None, None, f"{name} {path} is not an executable file"
    if browser is None or driver is None:
        missing = " and ".join(n for n, p in (("chromium", browser), ("chromedriver", driver)) if p is None)
        return None, None, f"no {missing} on PATH (Debian: apt-get install chromium chromium-driver)"
    return browser, driver, ""


def start_driver(browser: str, driver: str, width: int = 1400, height: int = 1100):
    """A headless Chromium through chromedriver (no sandbox: CI runs as root)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_text(driver, element_id: str, needle: str, timeout: float = WAIT_SECONDS) -> str:
    """Waits until the element `element_id` shows `needle`; returns its text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def shown(d):
        text = d.find_element(By.ID, element_id).text
        return text if needle in text else False

    return WebDriverWait(driver, timeout).until(shown, f"#{element_id} never showed {needle!r}")


def _wait_image(driver, element_id: str, timeout: float = WAIT_SECONDS) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, f"#{element_id} img"), f"#{element_id} never showed an image"
    )


def _wait_table_rows(driver, element_id: str, headers: list, rows: int, timeout: float = WAIT_SECONDS) -> str:
    """Waits until the table `element_id` (columns `headers`) shows `rows` rows; returns its text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def shown(d):
        lines = d.find_element(By.ID, element_id).text.splitlines()
        header_end = max((i for i, line in enumerate(lines) if line == headers[-1]), default=len(lines))
        cells = lines[header_end + 1 :]
        return "\n".join(cells) if len(cells) == rows * len(headers) else False

    return WebDriverWait(driver, timeout).until(shown, f"#{element_id} never showed {rows} rows")


def _set_number(driver, element_id: str, value: int) -> None:
    """Types `value` into the number box of the slider `element_id`."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element(By.CSS_SELECTOR, f"#{element_id} input[type='number']")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(str(value), Keys.TAB)


def _textarea(driver, element_id: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f"#{element_id} textarea")


def _type(driver, element_id: str, text: str) -> None:
    from selenium.webdriver.common.keys import Keys

    box = _textarea(driver, element_id)
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    box.send_keys(text)


def _click(driver, element_id: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, element_id).click()


def _open_tab(driver, label: str) -> None:
    from selenium.webdriver.common.by import By

    tab = next(b for b in driver.find_elements(By.CSS_SELECTOR, "button[role='tab']") if label in b.text)
    tab.click()


def drive_app(driver, url: str, out_dir: Path) -> dict:
    """Solves a generated Sudoku, shows a bad one's message, solves a maze and generates with CRSM and the
    meta-attention model; returns `{"texts": {...}, "screenshots": {...}}` (the page's messages and the PNGs)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from hf_reason.app.trm_tab import STEP_TABLE_HEADERS

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    texts, shots = {}, {}

    def shot(name: str) -> None:
        path = out_dir / f"app_{name}.png"
        driver.save_screenshot(str(path))
        shots[name] = path

    driver.get(url)
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda d: "See the models reason" in d.find_element(By.TAG_NAME, "body").text
    )
    _click(driver, "sudoku-generate")
    WebDriverWait(driver, WAIT_SECONDS).until(lambda d: _textarea(d, "sudoku-input").get_attribute("value").strip())
    _click(driver, "sudoku-solve")
    texts["sudoku"] = _wait_text(driver, "sudoku-message", "halting head")
    _wait_image(driver, "sudoku-image")
    texts["sudoku_table"] = _wait_table_rows(driver, "sudoku-table", STEP_TABLE_HEADERS, 6)
    shot("sudoku")
    # Solved again with another step budget, the table shows the new number of rows.
    _set_number(driver, "sudoku-steps", 3)
    _click(driver, "sudoku-solve")
    texts["sudoku_3_steps"] = _wait_table_rows(driver, "sudoku-table", STEP_TABLE_HEADERS, 3)
    _type(driver, "sudoku-input", SUDOKU_ROWS_WITH_TEN_CELLS)
    _click(driver, "sudoku-solve")
    texts["sudoku_bad"] = _wait_text(driver, "sudoku-message", "Input error")
    shot("sudoku_bad_input")

    _open_tab(driver, "TRM: maze")
    _click(driver, "maze-generate")
    WebDriverWait(driver, WAIT_SECONDS).until(lambda d: "S" in _textarea(d, "maze-input").get_attribute("value"))
    _click(driver, "maze-solve")
    texts["maze"] = _wait_text(driver, "maze-message", "halting head")
    _wait_image(driver, "maze-image")
    shot("maze")

    _open_tab(driver, "CRSM")
    _type(driver, "crsm-prompt", "What is 2 + 3?")
    _click(driver, "crsm-generate")
    texts["crsm"] = _wait_text(driver, "crsm-message", "MCTS committed")
    _wait_image(driver, "crsm-tree")
    shot("crsm")

    _open_tab(driver, "Meta-attention")
    _type(driver, "meta-prompt", "What is 12 + 30? Plan, compute, check.")
    _click(driver, "meta-generate")
    texts["meta"] = _wait_text(driver, "meta-message", "self-critic")
    _wait_image(driver, "meta-heatmap")
    shot("meta_attention")
    return {"texts": texts, "screenshots": shots}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/images", help="Folder of the PNGs (default docs/images).")
    parser.add_argument("--trm", action="append", default=None, metavar="DIR")
    parser.add_argument("--crsm", default=None, metavar="DIR")
    parser.add_argument("--meta", default=None, metavar="DIR")
    parser.add_argument("--critic", default=None, metavar="DIR")
    args = parser.parse_args()
    browser, chromedriver, reason = find_browser()
    if browser is None:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    from hf_reason.app import launch_app

    port = free_port()
    started = time.perf_counter()
    app = launch_app(trm=args.trm, crsm=args.crsm, meta=args.meta, critic=args.critic, port=port, block=False)
    print(f"app up in {time.perf_counter() - started:.1f} s at http://127.0.0.1:{port}")
    driver = start_driver(browser, chromedriver)
    try:
        result = drive_app(driver, f"http://127.0.0.1:{port}", Path(args.out))
    finally:
        driver.quit()
        app.close()
    for name, path in result["screenshots"].items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
