# Sitelabel: `make run` opens the app on a demo project; `make test` runs every check.
PYTHON ?= python3
export PYTHON

.PHONY: run test bench setup setup-test lint clean

setup:
	@scripts/system-deps.sh run
	@scripts/venv.sh

setup-test:
	@scripts/system-deps.sh test
	@scripts/venv.sh

run: setup
	@scripts/run.sh

test: setup-test
	@scripts/test.sh

bench: setup-test
	@for b in bench/*.py; do echo "== $$b"; .venv/bin/python $$b || exit 1; done

lint: setup
	.venv/bin/ruff check app tests bench && .venv/bin/ruff format --check app tests bench && .venv/bin/mypy && .venv/bin/lint-imports

clean:
	rm -rf .venv .demo build dist *.egg-info .mypy_cache .ruff_cache
