# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv run test lint typecheck format migrate bot check clean bench bench-quick soak soak-quick \
	fuzz fuzz-quick

# The environment is rebuilt whenever a pinned requirements file changes.
$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed

migrate: $(BIN)/.installed
	$(BIN)/alembic upgrade head

run: migrate
	$(BIN)/python -m webapp_api

bot: migrate
	$(BIN)/python -m bot

test: $(BIN)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(BIN)/.installed
	$(BIN)/mypy .

format: $(BIN)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

check: lint typecheck test

# Benchmarks (docs/PERFORMANCE.md). Need PostgreSQL (BENCH_DATABASE_URL, default
# postgresql://postgres@127.0.0.1:5432/postgres) and redis-server on PATH or BENCH_REDIS_URL.
bench: $(BIN)/.installed
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.retrieval

bench-quick: $(BIN)/.installed
	$(BIN)/python -m bench.run --quick
	$(BIN)/python -m bench.retrieval --quick

# The soak (docs/RELIABILITY.md): delivery under faults, 5 minutes; soak-quick is CI's 3-minute
# form. Same needs as the benchmarks, and redis-server on PATH (it kills its own). SOAK_ARGS
# passes options, e.g. SOAK_ARGS="--seed 42" to replay a run.
soak: $(BIN)/.installed
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

soak-quick: $(BIN)/.installed
	$(BIN)/python -m bench.soak --quick $(SOAK_ARGS)

# Schemathesis against the live API (docs/SECURITY.md): two passes of 5 minutes, or of 75 s for
# CI. FUZZ_DATABASE_URL=postgresql://... runs it on a fresh PostgreSQL database, else SQLite.
fuzz: $(BIN)/.installed
	$(BIN)/python -m fuzz.run

fuzz-quick: $(BIN)/.installed
	$(BIN)/python -m fuzz.run --quick

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
