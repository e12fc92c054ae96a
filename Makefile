# Two set-up commands on a fresh machine:
#   make demo   installs everything, indexes a real catalogue and queries it
#   make test   installs everything and runs lint, types and the full test suite
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED ?= $(abspath ../shared)
DEMO_DIR ?= out/demo
DEMO_N ?= 2000
export LOOKALIKE_IMAGE_MODEL ?= $(SHARED)/models/tf2_mobilenet_v2_1.0_224_ptq.tflite
export LOOKALIKE_IMAGE_TENSOR ?= GlobalPool

.PHONY: install demo test lint load-test opensearch opensearch-stop

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	# The CPU build of torch first: any other torch requirement pulls gigabytes of CUDA.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[clip,litert,offline-text,onnx,opensearch,dev,load]'
	touch $@

install: $(VENV)/.installed

# With ../shared: 2,000 real fashion-10k products and MobileNetV2. Without it: a small catalogue
# the demo draws itself, indexed with the model-free colour histogram (offline, no download).
demo: install
ifneq ($(wildcard $(SHARED)/datasets/fashion-10k/styles.csv),)
	$(PY) -m lookalike.cli convert fashion-10k $(SHARED)/datasets/fashion-10k $(DEMO_DIR)/catalogue.jsonl --limit $(DEMO_N)
	LOOKALIKE_DATA_DIR=$(DEMO_DIR)/data $(VENV)/bin/lookalike index $(DEMO_DIR)/catalogue.jsonl
	LOOKALIKE_DATA_DIR=$(DEMO_DIR)/data $(VENV)/bin/lookalike similar 15970 --k 5
	LOOKALIKE_DATA_DIR=$(DEMO_DIR)/data $(VENV)/bin/lookalike search "blue shirt" --anchor 15970 --filter gender=Men --k 5
else
	@echo "$(SHARED) has no fashion-10k: indexing a small generated catalogue instead"
	$(PY) -m lookalike.demo $(DEMO_DIR)/generated
	LOOKALIKE_DATA_DIR=$(DEMO_DIR)/generated-data LOOKALIKE_IMAGE_MODEL=color-histogram LOOKALIKE_IMAGE_TENSOR= LOOKALIKE_TEXT_MODEL=none $(VENV)/bin/lookalike index $(DEMO_DIR)/generated/catalogue.jsonl
	LOOKALIKE_DATA_DIR=$(DEMO_DIR)/generated-data LOOKALIKE_IMAGE_MODEL=color-histogram LOOKALIKE_IMAGE_TENSOR= LOOKALIKE_TEXT_MODEL=none $(VENV)/bin/lookalike similar 0 --k 5
	LOOKALIKE_DATA_DIR=$(DEMO_DIR)/generated-data LOOKALIKE_IMAGE_MODEL=color-histogram LOOKALIKE_IMAGE_TENSOR= LOOKALIKE_TEXT_MODEL=none $(VENV)/bin/lookalike search "striped rug" --anchor 1 --filter size=M --k 5
	@echo "On your own catalogue with the default CLIP model (downloaded on first use):"
	@echo "  unset LOOKALIKE_IMAGE_MODEL; .venv/bin/lookalike index catalogue.jsonl && .venv/bin/lookalike similar ID"
endif

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy lookalike indexer reranker
	$(VENV)/bin/lint-imports

# A real local OpenSearch node (opensearch-node/, built with Maven): every OpenSearch suite runs
# against it. OPENSEARCH_PORT picks the port (default 9200).
OPENSEARCH_PORT ?= 9200
export OPENSEARCH_PORT

opensearch:
	bash scripts/opensearch start

opensearch-stop:
	bash scripts/opensearch stop

test: install lint
	bash scripts/ensure-redis
	bash scripts/opensearch start
	OPENSEARCH_URL=http://127.0.0.1:$(OPENSEARCH_PORT) $(VENV)/bin/pytest -q --timeout=600

# Locust against a served 100k synthetic catalogue; knobs in load-tests/README.md.
load-test: install
	VENV=$(VENV) load-tests/run.sh
