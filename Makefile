# Two entry points (see README.md): `make start` and `make test`. Both are idempotent: the virtual environment
# is created once and re-installed only when pyproject.toml changes.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.spikelab-installed

.PHONY: start lab test venv clean-venv

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# torch first, pinned, so that no later requirement resolves a bare torch
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	@# SpikingJelly (a benchmark peer) declares torchvision/torchaudio: install it without its dependencies
	$(PY) -m pip install -q --no-deps spikingjelly loguru
	@# Norse (a benchmark peer) declares torchvision, and nirtorch a bare torch: the same, around nir's own deps
	$(PY) -m pip install -q "nir>=1.0" && $(PY) -m pip install -q --no-deps "norse>=1.1" "nirtorch>=2.0"
	@# compile spikelab's native CPU kernels now (about a second; without a C compiler the portable path runs)
	$(PY) -m spikelab._native
	@touch $(STAMP)

venv: $(STAMP)

start: $(STAMP)
	$(VENV)/bin/spikelab dashboard

lab: $(STAMP)
	$(VENV)/bin/spikelab lab

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
