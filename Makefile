# Sitelabel: `make run` opens the app on a demo project; `make test` runs every check.
PYTHON ?= python3
export PYTHON

.PHONY: run test bench soak setup setup-test lint lock clean installer bundle installer-check

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

# Re-resolve uv.lock to the newest versions pyproject.toml allows, export requirements/*.txt from it and
# list what changed. The lock, not pyproject.toml's ranges, is what the venv, CI and the installers use.
lock:
	@scripts/lock.sh update

# The long runs: the fuzzers with fresh random inputs (new finds land in build/fuzz-finds) and
# 16 simulated labelers on PostgreSQL for SITELABEL_LOAD_SECONDS (figures in build/reliability/load.json).
# Only these files; `make test` runs their regression seeds and leaves out what is marked `soak`. The PostgreSQL cluster is the
# tests' own throwaway one (tests/conftest.py pg_server_url), or $SITELABEL_TEST_PG_URL when set.
SOAK_TESTS = tests/reliability/test_fuzz_*.py tests/reliability/test_load_*.py
soak: setup-test
	SITELABEL_FUZZ_RANDOM=1 SITELABEL_FUZZ_EXAMPLES=$${SITELABEL_FUZZ_EXAMPLES:-20000} \
	SITELABEL_FUZZ_SAVE=build/fuzz-finds SITELABEL_LOAD_SECONDS=$${SITELABEL_LOAD_SECONDS:-300} \
	QT_QPA_PLATFORM=offscreen .venv/bin/pytest -p no:cacheprovider -q $(SOAK_TESTS); \
	rc=$$?; cat build/reliability/load.json 2>/dev/null; exit $$rc

bench: setup-test
	@for b in bench/*.py; do echo "== $$b"; .venv/bin/python $$b || exit 1; done

lint: setup
	.venv/bin/ruff check app tests bench && .venv/bin/ruff format --check app tests bench && .venv/bin/mypy && .venv/bin/lint-imports

# The frozen one-folder app (PyInstaller): dist/sitelabel/
installer: setup
	@scripts/installer.sh freeze

# The offline wheel bundle: dist/sitelabel-bundle-<version>-<target>-cp<py>/ (BUNDLE_ARGS="--target win_amd64")
bundle: setup
	@scripts/installer.sh bundle $(BUNDLE_ARGS)

# Builds the bundle, installs it offline into a fresh venv, builds and starts the frozen app (slow: not in `make test`)
installer-check: setup-test
	@scripts/installer-check.sh

clean:
	rm -rf .venv .demo build dist *.egg-info .mypy_cache .ruff_cache
