# AWE entry points. The first target that needs it creates .venv and installs everything.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PKGS   := -e 'libs/awecore[all]' -e services/catalog -e services/storage -e services/lineage -e services/federation \
	  -e services/compute -e examples/awe-skyback

.PHONY: install up down status demo test unit lint typecheck bench bench-catalog bench-storage bench-lineage bench-federation bench-compute bench-night bench-coadd clean

install: $(STAMP)

$(STAMP): libs/awecore/pyproject.toml services/catalog/pyproject.toml \
          services/storage/pyproject.toml services/lineage/pyproject.toml \
          services/federation/pyproject.toml services/compute/pyproject.toml \
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

test: $(STAMP) lint typecheck
	$(BIN)/pytest

unit: $(STAMP)
	$(BIN)/pytest -m "not integration"

lint: $(STAMP)
	$(BIN)/ruff check libs services tests bench examples deploy/k8s/base/scripts
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy libs/awecore/src services/catalog/src services/storage/src services/lineage/src \
		services/federation/src services/compute/src examples/awe-skyback/src

bench: bench-catalog bench-storage bench-lineage bench-federation bench-compute bench-night bench-coadd

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

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
