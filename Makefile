# Falco operators: one entry point for every developer task.
#   make test        set everything up from a fresh clone, lint, and run every test (what CI runs)
#   make pack        pack both charms (needs charmcraft and LXD: a Juju host, not this one)
#   make bench       count restarts/writes and time hooks per scripted event sequence
#   make fuzz        long property-based fuzzing of every input (make test runs a bounded one)
#   make lint | fmt | vendor | docs | integration | help

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CHARMS := falco falcosidekick-k8s
CHARMCRAFT_VERSION := 4.5.0

# Tests run on Python 3.12 (Ubuntu 24.04's) when it is installed, else on the default python3.
# uv must never download an interpreter: it uses exactly this one.
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $(HOME)/.pyenv)
PYTHON ?= $(or $(lastword $(sort $(wildcard $(PYENV_ROOT)/versions/3.12.*/bin/python3.12))),$(shell command -v python3.12 2>/dev/null),$(shell command -v python3))
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never

# uv from the PATH, or a private copy installed from PyPI on first use. Its directory goes
# first on the PATH of every recipe, so tests that run uv themselves find the same one.
TOOLS := $(CURDIR)/.tools
UV := $(or $(shell command -v uv 2>/dev/null),$(TOOLS)/bin/uv)
export PATH := $(TOOLS)/bin:$(PATH)

# Debian packages the component tests drive for real (installed when running as root): the
# tools (openssl hashes CA certificates the way a trust store names them), the libraries
# the real Falco of ../shared/workloads links against, what boots a real systemd in a
# container for the falco unit (debootstrap, systemd-nspawn), what gives the real
# Falcosidekick a network namespace of its own (unshare, ip), and the real Alertmanager its
# Alertmanager output posts to.
APT_PACKAGES := git logrotate openssh-server openssl prometheus systemd \
	libcurl4 zlib1g libelf1 libjsoncpp25 libre2-9 libtbb12 libssl3 \
	debootstrap systemd-container util-linux iproute2 prometheus-alertmanager
APT_COMMANDS := git logrotate sshd openssl promtool systemd-analyze debootstrap systemd-nspawn \
	unshare ip prometheus-alertmanager

.PHONY: help test lint fmt vendor check-vendor charmcraft-check pack integration deps apt-deps bench docs fuzz falco-checksums \
	$(addprefix test-,$(CHARMS)) $(addprefix lint-,$(CHARMS)) test-repo lint-repo

help:  ## Show the targets.
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

# Only uv itself lands in .tools/bin: the venv's python must not shadow anything on the PATH.
$(TOOLS)/bin/uv:
	python3 -m venv $(TOOLS)/venv
	$(TOOLS)/venv/bin/pip install --quiet 'uv>=0.5,<1'
	mkdir -p $(TOOLS)/bin && ln -sf $(TOOLS)/venv/bin/uv $(TOOLS)/bin/uv

deps: $(UV) apt-deps  ## Install uv (if missing) and the Debian tools of the component tests.

apt-deps:
	@missing=""; for c in $(APT_COMMANDS); do command -v $$c >/dev/null || missing="$$missing $$c"; done; \
	for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' \
	  || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "missing:$$missing (install $(APT_PACKAGES) to run every component test)"; exit 0; fi; \
	echo "installing $(APT_PACKAGES) for:$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -qq && apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null

test: deps check-vendor lint test-repo $(addprefix test-,$(CHARMS)) charmcraft-check  ## Lint and run every test (CI runs this).
	@echo "make test: all checks passed (Python $$($(PYTHON) -c 'import platform; print(platform.python_version())'))"

lint: deps lint-repo $(addprefix lint-,$(CHARMS))  ## ruff, mypy and codespell on everything.

# The repository's own project: shared libraries in libs/ and the cross-charm tests in tests/.
lint-repo:
	$(UV) sync --locked --quiet
	$(UV) run --no-sync ruff format --check .
	$(UV) run --no-sync ruff check .
	$(UV) run --no-sync mypy libs bench
	$(UV) run --no-sync codespell

test-repo: lint-repo
	$(UV) run --no-sync coverage run -m pytest
	$(UV) run --no-sync coverage report

$(addprefix lint-,$(CHARMS)): lint-%:
	cd charms/$* && $(UV) sync --locked --quiet
	cd charms/$* && $(UV) run --no-sync ruff format --check .
	cd charms/$* && $(UV) run --no-sync ruff check .
	cd charms/$* && $(UV) run --no-sync mypy src
	cd charms/$* && $(UV) run --no-sync codespell --toml ../../pyproject.toml .

# The bounded fuzz runs outside coverage: tracing doubles its time for next to no new lines.
$(addprefix test-,$(CHARMS)): test-%: lint-%
	cd charms/$* && $(UV) run --no-sync coverage run -m pytest --ignore-glob='tests/fuzz/*'
	cd charms/$* && $(UV) run --no-sync coverage report
	cd charms/$* && $(UV) run --no-sync pytest tests/fuzz

check-vendor:  ## Fail when a vendored copy under charms/*/ differs from its source in libs/.
	$(PYTHON) libs/vendor.py --check

vendor:  ## Regenerate the vendored copies of libs/ in the charms.
	$(PYTHON) libs/vendor.py

docs: deps  ## Regenerate the reference pages that come from charmcraft.yaml.
	$(UV) sync --locked --quiet
	$(UV) run --no-sync python docs/generate_reference.py

charmcraft-check: deps  ## Validate both charmcraft.yaml files with charmcraft itself.
	for charm in $(CHARMS); do \
	  (cd charms/$$charm && $(UV) tool run --quiet --from charmcraft==$(CHARMCRAFT_VERSION) \
	     charmcraft expand-extensions >/dev/null 2>charmcraft.err || { cat charmcraft.err; rm -f charmcraft.err; exit 1; }; \
	   rm -f charmcraft.err; echo "charmcraft expand-extensions: $$charm ok"; \
	   $(UV) tool run --quiet --from charmcraft==$(CHARMCRAFT_VERSION) \
	     python ../../scripts/charmcraft_parts.py charmcraft.yaml; \
	   echo "parts on every platform: $$charm ok"); \
	done

fmt: deps  ## Format and auto-fix everything.
	$(UV) run ruff format . && $(UV) run ruff check --fix .
	for charm in $(CHARMS); do (cd charms/$$charm && $(UV) run ruff format . && $(UV) run ruff check --fix .); done

# The Falco release whose tarballs the falco charm bundles (charms/falco/charmcraft.yaml).
FALCO_VERSION := 0.44.1

falco-checksums:  ## Print falco-payload's source-checksum lines: downloads each Falco tarball and its .asc and checks the signature with Falco's key (needs falco.org; fails without it).
	charms/falco/scripts/payload-checksums.sh $(FALCO_VERSION)

pack:  ## Pack both charms (on a host with charmcraft and LXD).
	for charm in $(CHARMS); do (cd charms/$$charm && charmcraft pack); done

bench: deps  ## Count restarts, writes and hook time per scripted event sequence; fail on a missed target.
	for charm in $(CHARMS); do \
	  (cd charms/$$charm && $(UV) sync --locked --quiet && \
	   $(UV) run --no-sync python tests/bench/bench.py ../../bench/results-$$charm.json); \
	done
	$(PYTHON) bench/report.py $(foreach c,$(CHARMS),bench/results-$(c).json)

fuzz: deps  ## Long property-based fuzzing of every option and databag (make test runs a bounded version).
	for charm in $(CHARMS); do \
	  (cd charms/$$charm && $(UV) sync --locked --quiet && \
	   HYPOTHESIS_PROFILE=fuzz $(UV) run --no-sync pytest -q tests/fuzz); \
	done

integration: deps  ## Run the Juju integration tests (need a Juju controller; fail without one).
	$(UV) sync --locked --quiet
	$(UV) run --no-sync pytest -v tests/integration
	cd charms/falco && $(UV) sync --locked --quiet && $(UV) run --no-sync pytest -v tests/integration