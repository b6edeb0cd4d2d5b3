# BrokerCRM: the two commands.
#   make demo   set up the embedded default (SQLite, Celery eager), load the demo book, run the
#               nightly jobs and serve on http://127.0.0.1:8000  (DEMO_CLIENTS, DEMO_SERVE=0)
#   make test   install the dev dependencies and run the whole test suite
#               (PostgreSQL / Redis when DATABASE_URL / REDIS_URL are set)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_CLIENTS ?= 5000
DEMO_MONTHS ?= 24
DEMO_SEED ?= 42
DEMO_SERVE ?= 1
DEMO_ADDR ?= 127.0.0.1:8000
PYTEST_ARGS ?=

.PHONY: demo test install install-dev lint format serve clean

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo --clients $(DEMO_CLIENTS) --months $(DEMO_MONTHS) --seed $(DEMO_SEED) --reset
	$(BIN)/python manage.py retention_defaults
	$(BIN)/python manage.py run_nightly
	$(BIN)/python manage.py demo_logins --url http://$(DEMO_ADDR)/
	@if [ "$(DEMO_SERVE)" != "0" ]; then \
		echo "Serving on http://$(DEMO_ADDR)/  (Ctrl-C to stop)"; \
		$(BIN)/python manage.py runserver $(DEMO_ADDR); \
	fi

serve: $(VENV)/.installed
	$(BIN)/python manage.py runserver $(DEMO_ADDR)

# With DATABASE_URL set, the suite runs on that database and then the few SQLite-path tests
# (marker `sqlite`) run once more on SQLite, so no test is left skipped.
test: $(VENV)/.installed-dev
	@if [ -n "$$DATABASE_URL" ]; then \
		$(BIN)/pytest -m "not sqlite" $(PYTEST_ARGS) && \
		env -u DATABASE_URL -u REDIS_URL $(BIN)/pytest -m sqlite $(PYTEST_ARGS); \
	else \
		$(BIN)/pytest $(PYTEST_ARGS); \
	fi

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-wal db.sqlite3-shm staticfiles artifacts
