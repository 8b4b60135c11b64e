# `make book` builds the site into _build/html; `make test` runs every test.
# Each creates what it needs on first use: the virtual environment .venv (reinstalled only when requirements.txt or
# pyproject.toml change), a local copy of MathJax (so the site needs no CDN), and for the browser test Debian's
# Chromium.
# `make autograde` autogrades every submission under assignments/submitted/ with nbgrader, a broken one never
# stopping the class (grader/classroom.py): the students' code runs in a bubblewrap sandbox (Debian's bubblewrap,
# installed here), the scores are computed outside it. COURSE=dir grades another course folder,
# ASSIGNMENT="a1_rnn a2_lstm" only those assignments, JOBS=2 two submissions at once. Report:
# $(COURSE)/autograded/grading_report.csv.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MATHJAX_VERSION := 3.2.2
MATHJAX := _mathjax/mathjax/tex-svg-full.js
CHROMIUM := /usr/bin/chromium
BWRAP := /usr/bin/bwrap
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: book test bench clean autograde feedback grades release

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

$(MATHJAX):
	npm install --silent --no-save --prefix $(VENV)/npm mathjax@$(MATHJAX_VERSION)
	mkdir -p $(dir $@)
	cp $(VENV)/npm/node_modules/mathjax/es5/tex-svg-full.js $@

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

# the throwaway PostgreSQL servers of the gradebook tests (tests/pg_server.py): Debian's server, off PATH
POSTGRES := $(firstword $(wildcard /usr/lib/postgresql/*/bin/postgres))
.PHONY: postgres-server
postgres-server:
	@test -n "$(POSTGRES)" || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql; }

# the grading sandbox (grader/sandbox.py)
$(BWRAP):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq bubblewrap

# sphinx-external-toc writes the home-page redirect only when none exists: drop a stale one first.
book: $(STAMP) $(MATHJAX)
	rm -f _build/html/index.html
	$(BIN)/jupyter-book build . -W -n --keep-going

test: $(STAMP) $(MATHJAX) $(CHROMIUM) $(BWRAP) postgres-server
	$(BIN)/python -m pytest

bench: $(STAMP) $(BWRAP)
	$(BIN)/python bench/reference_speed.py

COURSE ?= assignments
# the assignments: assignments/manifest.toml, the one list (grader/manifest.py)
ASSIGNMENTS = $(shell $(BIN)/python -m grader.manifest ids)

# `make release`: the student version of every assignment of the manifest (or of ASSIGNMENT=...), with nbgrader's
# generate_assignment, into $(COURSE)/release/
release: $(STAMP)
	cd $(COURSE) && for a in $(or $(ASSIGNMENT),$(ASSIGNMENTS)); do \
		$(abspath $(BIN))/nbgrader generate_assignment $$a --force || exit 1; done

ASSIGNMENT ?=
JOBS ?= 2
# DB_URL=postgresql+psycopg2://user@host/gradebook: the gradebook there instead of the course's db_url
DB_URL ?=
# ENGINE=threads (default): the one-process driver; ENGINE=dask: a Dask LocalCluster of JOBS worker processes,
# resumable (grader/cluster.py; as fast as the threads driver with two workers on 2 quiet CPUs, but its cluster takes
# twice as long to start, see README); SCHEDULER=tcp://host:8786: an existing Dask cluster instead; REGRADE=1: grade again what was graded
ENGINE ?= threads
SCHEDULER ?=
REGRADE ?=
autograde: $(STAMP) $(BWRAP)
	$(BIN)/python -m grader.classroom autograde --course $(COURSE) --jobs $(JOBS) --engine $(ENGINE) \
		$(if $(ASSIGNMENT),--assignment $(ASSIGNMENT)) $(if $(DB_URL),--db-url '$(DB_URL)') \
		$(if $(SCHEDULER),--scheduler $(SCHEDULER)) $(if $(REGRADE),--regrade)

clean:
	rm -rf _build

# `make feedback`: feedback HTML for every autograded submission (feedback/<student>/<assignment>/, no hidden
# test source); `make grades`: every score to $(COURSE)/grades.csv.
feedback: $(STAMP)
	$(BIN)/python -m grader.classroom feedback --course $(COURSE) $(if $(ASSIGNMENT),--assignment $(ASSIGNMENT)) \
		$(if $(DB_URL),--db-url '$(DB_URL)')

grades: $(STAMP)
	$(BIN)/python -m grader.classroom grades --course $(COURSE) $(if $(DB_URL),--db-url '$(DB_URL)')
