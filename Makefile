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

# Stages print their expected time on a 2-core CPU; the report ($(WORKDIR)/index.html) is written
# after stage 2 and fills in as the later stages finish (reload it).
demo: $(VENV)/.installed
	@echo "== [1/6] behavior model: build synthetic_motion, train 5 000 steps (~11 min)"
	$(BIN)/python train.py --config=configs/behavior.py:demo --workdir=$(WORKDIR) \
	  --config.data.data_dir=$(DATA_DIR)
	@echo "== [2/6] ground-truth transfer, transfer grid, neighbours and UMAP, then the report (~5 min)"
	$(BIN)/python evaluate.py --config=configs/behavior.py:demo --workdir=$(WORKDIR) \
	  --eval_config=configs/evaluate.py:demo --eval_config.suites=gt_transfer
	$(BIN)/python synthesize.py transfer --workdir=$(WORKDIR) --report=false
	$(BIN)/python synthesize.py neighbours --workdir=$(WORKDIR) --report=false
	$(BIN)/python synthesize.py umap --workdir=$(WORKDIR)
	@echo "== The report is open for reading: $(WORKDIR)/index.html (it fills in as the demo goes on)"
	@echo "== [3/6] flow prior: train 1 500 steps (~2 min)"
	$(BIN)/python train.py --config=configs/flow.py:demo --workdir=$(WORKDIR)/flow \
	  --config.behavior_workdir=$(WORKDIR)
	@echo "== [4/6] the paper's behavior suites with both priors, samples, predictions (~4 min)"
	$(BIN)/python evaluate.py --config=configs/behavior.py:demo --workdir=$(WORKDIR) \
	  --eval_config=configs/evaluate.py:demo --eval_config.suites=transfer,realism,diversity,hmp \
	  --report=false
	$(BIN)/python synthesize.py sample --workdir=$(WORKDIR) --report=false
	$(BIN)/python synthesize.py predict --workdir=$(WORKDIR) --report=false
	$(BIN)/python synthesize.py interpolate --workdir=$(WORKDIR)
	@echo "== [5/6] appearance model: build synthetic_people, train 1 500 steps (~16 min)"
	$(BIN)/python train.py --config=configs/appearance.py:demo --workdir=$(WORKDIR)/appearance \
	  --config.data.data_dir=$(DATA_DIR)
	@echo "== [6/6] appearance evaluation and the RGB re-enactment video (~3 min)"
	$(BIN)/python evaluate.py --config=configs/appearance.py:demo --workdir=$(WORKDIR)/appearance \
	  --eval_config=configs/evaluate.py:demo --eval_config.suites=appearance --report=false
	$(BIN)/python synthesize.py video --workdir=$(WORKDIR) --appearance_workdir=$(WORKDIR)/appearance

test: $(VENV)/.installed-tests
	$(BIN)/python -m pytest -q -n 2 --dist loadfile tests

clean:
	rm -rf $(VENV)
