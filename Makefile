# The two commands of the README: `make demo` and `make test`. Both set everything up themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The newest torch this project's machines hold on disk; override for another platform.
TORCH ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed
# Workflow rules call `auxbench`, `snakemake` and `dvc` from the venv; DVC must not phone home.
export PATH := $(abspath $(BIN)):$(PATH)
export DVC_NO_ANALYTICS := 1

.PHONY: setup data browser gl slurm demo test lint format bench bench-gpu docs

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(STAMP)

data: $(STAMP)
	$(BIN)/auxbench datasets --fetch fashion-mnist

# Headless Chromium renders the HTML report in the tests (Debian's package; installed when root).
browser:
	command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ apt-get install -y -qq chromium || { apt-get update -qq && apt-get install -y -qq chromium; }; }; } || \
		echo "chromium not installed: the report's browser test will be skipped"

# Headless OpenGL for the MuJoCo environments of the manipulation track: EGL, and OSMesa as the
# fall-back (Debian's Mesa packages; installed when root). auxbench.rltrack.manipulation picks
# whichever works; without either its tests are skipped, saying why.
GL_PACKAGES := libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6
gl:
	dpkg -s $(GL_PACKAGES) >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ apt-get install -y -qq $(GL_PACKAGES) || { apt-get update -qq && apt-get install -y -qq $(GL_PACKAGES); }; }; } || \
		echo "EGL/OSMesa not installed: the MuJoCo environments' tests will be skipped"

# Debian's SLURM and munge for the SLURM test (installed when root; otherwise it says why that
# test is skipped). The test starts the one-node cluster and stops it: tests/slurm/cluster.sh.
slurm:
	bash tests/slurm/cluster.sh install || echo "SLURM not installed: see tests/slurm/cluster.sh"

demo: data
	$(BIN)/snakemake --profile profiles/default

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The documentation site (mkdocs.yml, docs/): strict, offline; .docs-site/ is git-ignored.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir .docs-site

test: data browser gl slurm lint docs
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

bench: data
	$(BIN)/auxbench bench

# The GPU benchmark (docs/results/cost.md#gpu-benchmark): VGG16 on CIFAR-shaped synthetic data, each
# method in fp32, bf16, channels-last and torch.compile, projected to the papers' protocols; under
# 8 minutes on one H200-class GPU: 10 steps an epoch, 1 warm-up and 3 timed epochs a variant,
# compile only for single and maxl-fo (MAXL's exact hypergradient is a double backward, which
# torch.compile refuses; each compile warm-up takes up to a minute or so), and --max-seconds 420
# skips, with a note, what would end later. Without CUDA it stops with one line naming the CPU
# command. The rows: $(BENCH_GPU_OUT)/variants.json|csv.
BENCH_GPU_OUT ?= results/bench-gpu
bench-gpu: $(STAMP)
	@$(BIN)/auxbench bench --device cuda --variants fp32,bf16,channels_last,compile \
		--methods single,maxl,maxl-fo,rl-aux,human+noise/weighting=autolambda,mtl/weighting=autolambda \
		--compile-methods single,maxl-fo --steps 10 --repeats 3 --warmup 1 --max-seconds 420 \
		--out $(BENCH_GPU_OUT)
	@$(BIN)/auxbench bench --device cuda --dense nyuv2-shaped --model resnet50 \
		--architectures split,mtan --methods fixed,autolambda,fixed+pcgrad --batch-size 4 \
		--steps 10 --repeats 2 --out $(BENCH_GPU_OUT)
