# Kizuna: one-command set-up, demo, tests and benchmarks.
# Works on a fresh machine with only Python and the package registries: installs uv if missing.
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
VENV := .venv
RUN := $(VENV)/bin
SCENARIO ?= scenarios/pacific-shield.toml
OUT ?= out
# Small batched linear algebra is slower with BLAS threads on a shared 2-core box; one per process.
OPENBLAS_NUM_THREADS ?= 1
OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS OMP_NUM_THREADS

.PHONY: setup demo test bench lint fuzz clean readme

$(VENV)/.synced: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen --compile-bytecode
	@touch $@

setup: $(VENV)/.synced

demo: setup
	$(RUN)/kizuna exercise $(SCENARIO) --out $(OUT)/pacific-shield

test: setup
	$(RUN)/pytest -q

bench: setup
	$(RUN)/python benchmarks/run_all.py

# Gateway decoders (ASTERIX, pcap, DIS, CoT): 100,000 random and mutated inputs each.
fuzz: setup
	$(RUN)/python benchmarks/fuzz_gateways.py 100000

lint: setup
	$(RUN)/ruff check src tests benchmarks
	$(RUN)/ruff format --check src tests benchmarks
	$(RUN)/mypy src

readme: setup
	$(RUN)/python docs/readme/build.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache

# Rebuild the COP front end (web/ -> src/kizuna/cop/static, committed) from package-lock.json.
.PHONY: web
web:
	cd web && npm ci --no-audit --no-fund && npm run build
