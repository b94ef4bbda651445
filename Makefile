# Every target sets itself up: on a fresh machine with python3.11 and pip, `make test` and
# `make train` create .venv, install the CPU build of torch, then this package with its dev tools.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
# An unpinned torch pulls a multi-GB CUDA build; pin the CPU one. A torch already in .venv
# (e.g. a CUDA build you installed yourself, see README) is kept.
TORCH_VERSION ?= 2.13.0
TYPECHECK_TREE := build/typecheck

.PHONY: setup test check bench bench-teacher-flat bench-teacher-levers bench-teacher-rough bench-students docs-reliability train clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(PY) -m pip install --quiet -e ".[dev,robot]"
	touch $(STAMP)

test: setup
	$(PY) -m pytest

# mypy cannot follow setuptools' editable-install import hook, so it checks a tree of symlinks that
# mirrors the installed layout (envs/ -> humanoid_prior/envs, ...) from pyproject's package-dir; compare_commits
# builds the same tree to run another commit's code.
check: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	rm -rf $(TYPECHECK_TREE)
	$(PY) benchmarks/compare_commits.py --import-tree $(TYPECHECK_TREE)
	MYPYPATH=$(TYPECHECK_TREE) $(VENV)/bin/mypy -p humanoid_prior
	MYPYPATH=$(TYPECHECK_TREE) $(VENV)/bin/mypy train.py benchmarks
	MYPYPATH=$(TYPECHECK_TREE) $(VENV)/bin/mypy --allow-untyped-defs tests

bench: setup
	$(PY) benchmarks/sim_throughput.py --robot g1 --num-envs 64 --task rough --json docs/results/sim_throughput_g1.json
	$(PY) benchmarks/train_throughput.py --preset g1_flat --json docs/results/train_throughput_g1_flat.json

# Learning evidence, budgeted in env steps (long: 2 seeds x 8 M steps is ~45 min on 2 cores at 6k steps/s;
# the rough curriculum 50 M steps); resumable, run them with nohup.
bench-teacher-flat: setup
	MUJOCO_GL=egl $(PY) benchmarks/teacher_learning.py --preset g1_flat --steps 8000000 --seeds 0 1

# Each lever of the flat recipe off, 2 seeds x 5 M steps each -> docs/results/teacher_levers.md (hours).
bench-teacher-levers: setup
	MUJOCO_GL=egl $(PY) benchmarks/teacher_levers.py --steps 5000000 --seeds 0 1

bench-teacher-rough: setup
	MUJOCO_GL=egl $(PY) benchmarks/teacher_learning.py --preset g1_rough --steps 50000000 --seeds 0 1 --eval-every 5000000

# Students from one teacher (TEACHER=runs/<teacher run>), six rows at one env-step budget (~1 h on 2 cores).
bench-students: setup
	MUJOCO_GL=egl $(PY) benchmarks/student_comparison.py --teacher $(TEACHER) --steps 3000000

# The main job: teacher -> teacher data -> student -> eval -> export (G1; `train.py pipeline --help`).
# Resumable: run it again after an interruption. Rendering is headless (EGL).
# docs/reliability.md: every bad input the reliability tests try and what it gets (~4 min on 2 cores).
docs-reliability: setup
	HUMANOID_PRIOR_RELIABILITY_DOC=docs/reliability.md $(PY) -m pytest -q \
		tests/test_validation.py tests/test_run_safety.py tests/test_runtime_safety.py tests/test_example_robots.py

train: setup
	MUJOCO_GL=egl $(PY) train.py pipeline

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
