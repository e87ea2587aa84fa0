# The two commands a new user needs (see README.md): `make demo` and `make test`.
.PHONY: setup demo test test-fast lint bench

setup:
	@scripts/setup.sh

demo: setup
	.venv/bin/starcoder-agents run

test: setup
	.venv/bin/python -m pytest

test-fast: setup
	.venv/bin/python -m pytest -m "not slow"

lint: setup
	.venv/bin/ruff check .

bench: setup
	.venv/bin/python -m benchmarks.sandbox_overhead
	.venv/bin/python -m benchmarks.models --quick
