# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv run test lint typecheck format migrate bot check clean bench bench-quick fuzz fuzz-quick

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

bench-quick: $(BIN)/.installed
	$(BIN)/python -m bench.run --quick

# Schemathesis against the live API (docs/SECURITY.md): two passes of 5 minutes, or of 75 s for
# CI. FUZZ_DATABASE_URL=postgresql://... runs it on a fresh PostgreSQL database, else SQLite.
fuzz: $(BIN)/.installed
	$(BIN)/python -m fuzz.run

fuzz-quick: $(BIN)/.installed
	$(BIN)/python -m fuzz.run --quick

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
