# Quick start (README): `make demo` trains the behavior model, its flow prior and the appearance
# model on the embedded synthetic datasets, evaluates them, synthesises transfer grids, samples
# and an RGB re-enactment video, and ends with the path of the run's index.html report;
# `make test` runs the tests. Both create .venv and install the pinned requirements on first use.
PYTHON ?= python3
VENV ?= .venv
DATA_DIR ?= data/tfds
WORKDIR ?= runs/demo
BIN := $(VENV)/bin

.PHONY: install demo test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-tests: tests/requirements.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r tests/requirements.txt
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/python train.py --config=configs/behavior.py:demo --workdir=$(WORKDIR) \
	  --config.data.data_dir=$(DATA_DIR)
	$(BIN)/python train.py --config=configs/flow.py:demo --workdir=$(WORKDIR)/flow \
	  --config.behavior_workdir=$(WORKDIR)
	$(BIN)/python train.py --config=configs/appearance.py:demo --workdir=$(WORKDIR)/appearance \
	  --config.data.data_dir=$(DATA_DIR)
	$(BIN)/python evaluate.py --config=configs/behavior.py:demo --workdir=$(WORKDIR) \
	  --eval_config=configs/evaluate.py:demo --report=false
	$(BIN)/python evaluate.py --config=configs/appearance.py:demo --workdir=$(WORKDIR)/appearance \
	  --eval_config=configs/evaluate.py:demo --eval_config.suites=appearance --report=false
	$(BIN)/python synthesize.py transfer --workdir=$(WORKDIR) --report=false
	$(BIN)/python synthesize.py sample --workdir=$(WORKDIR) --report=false
	$(BIN)/python synthesize.py interpolate --workdir=$(WORKDIR) --report=false
	$(BIN)/python synthesize.py neighbours --workdir=$(WORKDIR) --report=false
	$(BIN)/python synthesize.py umap --workdir=$(WORKDIR) --report=false
	$(BIN)/python synthesize.py video --workdir=$(WORKDIR) --appearance_workdir=$(WORKDIR)/appearance

test: $(VENV)/.installed-tests
	$(BIN)/python -m pytest -q tests

clean:
	rm -rf $(VENV)
