# The two commands: `make run` and `make test`. Everything else is a step they share.
PYTHON ?= python3.11
HOST ?= 127.0.0.1
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
BASE_STAMP := $(VENV)/.installed-base
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test test-clock-ahead install migrate lint schema clean bench-history bench-signaling bench-signaling-cross bench-surge bench-chat

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# `make run` needs only the runtime set; the test tools (aiortc and its media stack among them)
# are installed by `make test`.
$(BASE_STAMP): requirements/base.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements/base.txt
	touch $@

$(DEV_STAMP): requirements/base.txt requirements/dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt
	touch $(BASE_STAMP) $@

install: $(DEV_STAMP)

migrate: $(BASE_STAMP)
	$(BIN)/python manage.py migrate --noinput

## run: set up, seed demo data, serve HTTP + WebSocket (config/serve.py) with a Celery worker and beat,
## sharing one channel layer (REDIS_URL, or the embedded Redis); config/run.py starts and stops them.
run: migrate
	$(BIN)/python manage.py seed_demo
	@echo ""
	@echo "API        http://$(HOST):$(PORT)/api/v1/"
	@echo "API docs   http://$(HOST):$(PORT)/api/docs/   (ReDoc: /api/redoc/, schema: /api/schema/)"
	@echo "Health     http://$(HOST):$(PORT)/api/health/live   /api/health/ready"
	@echo "Admin      http://$(HOST):$(PORT)/admin/   (staff@demo.clinic)"
	@echo "WebSocket  ws://$(HOST):$(PORT)/ws/"
	@echo ""
	@HOST=$(HOST) PORT=$(PORT) exec $(BIN)/python -m config.run

## test: install what the suite needs and run all of it.
test: install
	$(BIN)/python -m pytest

## test-clock-ahead: the suite with every process's clock a year ahead, so date bombs go off now.
CLOCK_AHEAD_DAYS ?= 365
# sitecustomize imports time_machine before pytest loads it as a plugin: nothing to rewrite there.
test-clock-ahead: install
	CLOCK_AHEAD_DAYS=$(CLOCK_AHEAD_DAYS) PYTHONPATH=$(CURDIR)/tests/clock_ahead $(BIN)/python -m pytest \
		-W 'ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning'

## bench-history: time the call-history endpoint over 10,000 calls (a benchmark, not a test).
bench-history: $(BASE_STAMP)
	$(BIN)/python scripts/bench_call_history.py --calls 10000 --pages 10,20,50,100 --repeat 30

BENCH_STAMP := $(VENV)/.bench-installed
BENCH_NODE := bench/signaling/node
BENCH_ARGS ?=

$(BENCH_STAMP): requirements/base.txt requirements/bench.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements/bench.txt
	touch $@

$(BENCH_NODE)/node_modules/.package-lock.json: $(BENCH_NODE)/package.json $(BENCH_NODE)/package-lock.json
	npm ci --prefix $(BENCH_NODE) --no-audit --no-fund

## bench-signaling: relay msg/s and round trips vs raw websockets and socket.io (docs/performance.md).
bench-signaling: $(BENCH_STAMP) $(BENCH_NODE)/node_modules/.package-lock.json
	$(BIN)/python bench/signaling/run.py $(BENCH_ARGS)

## bench-signaling-cross: the same across two processes, every signal through Redis, against two socket.io
## processes sharing @socket.io/redis-adapter (PostgreSQL; docs/performance.md).
bench-signaling-cross: $(BENCH_STAMP) $(BENCH_NODE)/node_modules/.package-lock.json
	$(BIN)/python bench/signaling/run.py --cross $(BENCH_ARGS)

## bench-surge: P calls set up at once (ticket, socket, join) on 1 and 2 processes vs socket.io connecting
## as many clients, on PostgreSQL and Redis (docs/performance.md).
bench-surge: $(BENCH_STAMP) $(BENCH_NODE)/node_modules/.package-lock.json
	$(BIN)/python bench/surge/run.py $(BENCH_ARGS)

## bench-chat: chat stored and delivered over the socket vs the relay, on PostgreSQL and Redis (docs/performance.md).
bench-chat: $(BENCH_STAMP)
	$(BIN)/python bench/chat/run.py $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run

schema: install
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file var/openapi.yaml

clean:
	rm -rf $(VENV) var
