"""The README's short tour and the command line after it are what users paste first: they must run as written."""

import json
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
    # the command line right after the tour solves a puzzle with the model it saved
    commands = re.search(r"```bash\n(.*?)```", tour, re.S).group(1)
    assert "hf-reason solve trm-sudoku" in commands
    script = Path(sys.executable).parent / "hf-reason"
    result = subprocess.run(
        ["bash", "-ec", commands.replace("hf-reason ", f"{script} ")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = result.stdout.splitlines()
    solution = json.loads(line)["solution"]
    assert len(solution) == 81 and set(solution) <= set("0123456789"), solution
