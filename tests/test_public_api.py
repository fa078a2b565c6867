"""Every import path users have relied on keeps working, wherever its code lives now.

`tests/data/public_api.json` lists, per module, the names of its `__all__` and every name that the
README, the docs, the examples, the benches and the tests import from it. Moving code is fine;
breaking one of these imports is not (re-export it from its old module).
"""

import importlib
import importlib.util
import json
from pathlib import Path

import pytest


PUBLIC_API = json.loads((Path(__file__).parent / "data" / "public_api.json").read_text())


@pytest.mark.parametrize("module", sorted(PUBLIC_API))
def test_every_public_name_still_imports_from_its_module(module):
    imported = importlib.import_module(module)
    missing = [name for name in PUBLIC_API[module] if not hasattr(imported, name)]
    missing = [name for name in missing if not _is_submodule(module, name)]
    assert not missing, f"`from {module} import ...` no longer finds {missing}"


def _is_submodule(module: str, name: str) -> bool:
    try:
        return importlib.util.find_spec(f"{module}.{name}") is not None
    except ModuleNotFoundError:  # `module` is not a package
        return False
