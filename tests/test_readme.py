"""The README's short tour is code users paste first: it must run as written."""

import re
import subprocess
import sys
from pathlib import Path


README = Path(__file__).resolve().parents[1] / "README.md"


def test_short_tour_runs_as_written(tmp_path):
    text = README.read_text()
    tour = text[text.index("## A short tour") :]
    code = re.search(r"```python\n(.*?)```", tour, re.S).group(1)
    code += "\nassert solved.predictions.shape == input_ids.shape, solved.predictions.shape\n"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "trm-sudoku" / "model.safetensors").is_file()
