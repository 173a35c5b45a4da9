# AWE entry points. The first target that needs it creates .venv and installs everything.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PKGS   := -e 'libs/awecore[all]' -e services/catalog -e services/storage -e services/lineage -e services/federation \
	  -e services/compute -e services/vo -e services/portal -e examples/awe-skyback
#: the browser the portal's tests drive (Debian's package: Playwright's own download is not
#: reachable from every machine)
CHROMIUM := /usr/bin/chromium

.PHONY: browser install up down status demo test unit lint typecheck bench bench-catalog bench-storage bench-lineage bench-federation bench-compute bench-night bench-coadd bench-vo bench-portal bench-load bench-scale clean

install: $(STAMP)

$(STAMP): libs/awecore/pyproject.toml services/catalog/pyproject.toml \
          services/storage/pyproject.toml services/lineage/pyproject.toml \
          services/federation/pyproject.toml services/compute/pyproject.toml \
          services/vo/pyproject.toml services/portal/pyproject.toml \
          examples/awe-skyback/pyproject.toml requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(PKGS) -r requirements-dev.txt
	touch $(STAMP)

up: $(STAMP)
	$(BIN)/awe up

down: $(STAMP)
	$(BIN)/awe down

status: $(STAMP)
	$(BIN)/awe status

demo: $(STAMP)
	$(BIN)/python -m awecore.demo

test: $(STAMP) $(CHROMIUM) lint typecheck
	$(BIN)/pytest

unit: $(STAMP)
	$(BIN)/pytest -m "not integration"

lint: $(STAMP)
	$(BIN)/ruff check libs services tests bench examples deploy/k8s/base/scripts
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy libs/awecore/src services/catalog/src services/storage/src services/lineage/src \
		services/federation/src services/compute/src services/vo/src services/portal/src \
		examples/awe-skyback/src

bench: bench-catalog bench-storage bench-lineage bench-federation bench-compute bench-night bench-coadd bench-vo \
	bench-portal bench-load

bench-catalog: $(STAMP)
	$(BIN)/python bench/catalog.py

bench-storage: $(STAMP)
	$(BIN)/python bench/storage.py

bench-lineage: $(STAMP)
	$(BIN)/python bench/lineage.py

bench-federation: $(STAMP)
	$(BIN)/python bench/federation.py

bench-compute: $(STAMP)
	$(BIN)/python bench/compute.py
	$(BIN)/python bench/planning.py

bench-night: $(STAMP)
	$(BIN)/python bench/night.py

bench-coadd: $(STAMP)
	$(BIN)/python bench/coadd.py

bench-vo: $(STAMP)
	$(BIN)/python bench/vo.py
	$(BIN)/python bench/vo_dal.py

bench-portal: $(STAMP)
	$(BIN)/python bench/portal.py

bench-load: $(STAMP)
	$(BIN)/python bench/load.py

#: not part of `bench`: it generates (once, kept in /tmp/awe-scale) 10^7 objects and 10^8
#: sources: ~2.5 h and ~60 GB on 2 cores; SCALE_ARGS="--objects 3000000 --sources 10000000"
#: is ~40 min and 15 GB
bench-scale: $(STAMP)
	$(BIN)/python bench/scale.py $(SCALE_ARGS)

browser: $(CHROMIUM)

$(CHROMIUM):
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
