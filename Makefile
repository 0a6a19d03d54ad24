# The two commands of the quickstart: `make run` and `make test`. Only Python 3.11 and make needed (make test
# also Debian's pgbouncer and chromium, installed as root: scripts/test-deps.sh);
# without DATABASE_URL both use an embedded PostgreSQL (data in .postgres/, `make stop` stops it).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SERVE_PID ?= .serve.pid
# Tests need some secret key; the real one comes from the environment or .env.
TEST_ENV := DJANGO_SECRET_KEY=$${DJANGO_SECRET_KEY:-test-only-secret-key-not-for-production}
# `manage.py check --deploy` runs with the settings production would have: a long random key, HTTPS only.
PRODUCTION_ENV := DJANGO_SECRET_KEY=$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))') \
	DJANGO_SECURE_SSL_REDIRECT=true DJANGO_SECURE_COOKIES=true DJANGO_HSTS_SECONDS=31536000

.PHONY: install db stop migrate static seed serve serve-all worker run test-deps test lint schema bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $(VENV)/.installed $@

# A local secret key, made once and never committed.
.env:
	$(PYTHON) -c 'import secrets; print("DJANGO_SECRET_KEY=" + secrets.token_urlsafe(50))' > .env

install: $(VENV)/.installed

# The embedded PostgreSQL, started unless DATABASE_URL names a server (then nothing embedded starts).
db: install
	@if [ -z "$$DATABASE_URL" ]; then $(BIN)/python -m core.local_db start >/dev/null; fi

# Stops what `make run` (serve-all) started, then the embedded PostgreSQL unless DATABASE_URL names a server
# (as `db` starts it only then).
stop: install
	@pid=$$(cat $(SERVE_PID) 2>/dev/null); if [ -n "$$pid" ] && kill -TERM "$$pid" 2>/dev/null; then \
	  echo "stopping the server and the worker (pid $$pid)"; \
	  for _ in $$(seq 120); do kill -0 "$$pid" 2>/dev/null || break; sleep 0.25; done; fi; rm -f $(SERVE_PID)
	@if [ -z "$$DATABASE_URL" ]; then $(BIN)/python -m core.local_db stop; fi

migrate: db
	$(BIN)/python manage.py migrate --noinput

static: install
	$(BIN)/python manage.py collectstatic --noinput -v 0

# Idempotent: registers users 1000-1999 unless they exist.
seed: db
	$(BIN)/python manage.py seed_users

serve: db .env
	$(BIN)/gunicorn -c gunicorn.conf.py

# The background work on the task queue (TTL sweep every second, report purge, event log), until SIGTERM.
worker: db
	$(BIN)/python manage.py worker

# The web server and the worker as two processes that stop together: when either ends, or on
# Ctrl-C or SIGTERM (`make stop`, which finds them by $(SERVE_PID)), the other is stopped too.
serve-all: SHELL := /bin/bash
serve-all: db .env
	@echo $$$$ > $(SERVE_PID); $(BIN)/gunicorn -c gunicorn.conf.py & web=$$!; $(BIN)/python manage.py worker & worker=$$!; \
	trap 'kill -TERM $$web $$worker 2>/dev/null' INT TERM; \
	wait -n; kill -TERM $$web $$worker 2>/dev/null; wait; rm -f $(SERVE_PID)

# Local first start: the same steps as the Docker image, plus an admin account and an API token. Their
# password and token are saved in .quickstart (git-ignored) and shown last, once the server answers and the
# worker has swept, with how to find them again.
run: install db .env
	$(MAKE) migrate static
	$(BIN)/python manage.py quickstart --save .quickstart
	@$(BIN)/python manage.py show_credentials .quickstart & $(MAKE) serve-all

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# Regenerate the committed OpenAPI schema after changing the API.
schema: $(VENV)/.installed-dev db
	$(TEST_ENV) $(BIN)/python manage.py spectacular --validate --fail-on-warn --file docs/openapi.yaml

# What the suite needs besides Python and make: Debian's pgbouncer and chromium, installed with apt-get as root,
# else one line saying what to install (scripts/test-deps.sh). Debian keeps pgbouncer in /usr/sbin, off a
# user's PATH.
test test-deps: export PATH := $(PATH):/usr/sbin
test-deps:
	@scripts/test-deps.sh

test: test-deps $(VENV)/.installed-dev db
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(TEST_ENV) $(BIN)/python manage.py makemigrations --check --dry-run
	$(TEST_ENV) $(BIN)/python manage.py spectacular --validate --fail-on-warn --file $(VENV)/openapi.yaml
	@diff -u docs/openapi.yaml $(VENV)/openapi.yaml || { echo "docs/openapi.yaml differs from the code: run make schema"; exit 1; }
	env -u DJANGO_DEBUG $(PRODUCTION_ENV) $(BIN)/python manage.py check --deploy --fail-level WARNING
	$(TEST_ENV) $(BIN)/pytest

# The bench serves a copy of the code, so it is given the embedded server's URL explicitly.
bench: $(VENV)/.installed-dev db
	DATABASE_URL=$${DATABASE_URL:-$$(cat .postgres/url)} $(TEST_ENV) $(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) staticfiles
