# The two set-up commands are `make demo` and `make test`; both install first when needed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch is installed before the package: a plain `torch` requirement resolved from scratch
# would pull the newest CUDA build (gigabytes). By default pip resolves TORCH_SPEC from its
# configured index (or a local wheel it finds); set TORCH_INDEX to install from another index,
# e.g. the CPU-only wheels:
#   make install TORCH_INDEX=https://download.pytorch.org/whl/cpu
# TORCH_SPEC chooses another version or build (e.g. TORCH_SPEC="torch==2.13.0+cpu").
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
TORCH_INDEX_ARGS := $(if $(strip $(TORCH_INDEX)),--index-url $(TORCH_INDEX))
export HF_HUB_DISABLE_TELEMETRY := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test quality style fix-copies bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install $(TORCH_INDEX_ARGS) "$(TORCH_SPEC)"
	$(PIP) install -e ".[dev]"
	touch $@

demo: install
	$(PY) examples/demo.py

test: install
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) -m pytest -n 2 --dist loadfile -q

# Lint, format and copied-code checks (CI runs them); `make style` / `make fix-copies` apply the fixes.
quality: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) utils/check_copies.py

style: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# Rewrites code marked `# Copied from hf_reason...` from its source (see utils/check_copies.py).
fix-copies: install
	$(PY) utils/check_copies.py --fix_and_overwrite

bench: install
	@for f in bench/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
