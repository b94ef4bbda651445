"""Throughput before and after a change: two trees of this repository benchmarked in one run, interleaved.

A refactor claims "ratios unchanged within noise". This machine's speed drifts by 3x between days, so
the two sides are measured in one script, alternating round by round (before, after, after, before,
...), and each side's median is reported beside its runs.

    python benchmarks/compare_commits.py --before 20e4e23 --rounds 3 --json out.json

The "before" tree is a detached `git worktree` of the commit; "after" is this checkout as it stands
(or `--after REV`). Each tree runs its own benchmark scripts against its own package: a tree of
symlinks mirroring the installed layout (`envs/` -> `humanoid_prior/envs`, as `make check` builds for
mypy) goes first on PYTHONPATH, ahead of the editable install's import hook; a check before the first
round makes sure each tree imports its own code.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from humanoid_prior.monitoring import machine

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = {
    "sim": "benchmarks/sim_throughput.py --robot g1 --num-envs 64 --task rough --repeats 3",
    "train": "benchmarks/train_throughput.py --preset g1_flat --rounds 1",
}
"""Each benchmark writes a JSON with a `ratio` (and sim_throughput a `task_overhead`); one call per round."""
FIGURES = ("ratio", "task_overhead")


def subpackages(tree: Path) -> dict[str, str]:
    """`humanoid_prior.<name>` -> its folder at the tree's root, from the tree's own pyproject package-dir."""
    mapping = tomllib.loads((tree / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    return {name.split(".", 1)[1]: folder for name, folder in mapping.items() if "." in name}


def import_tree(tree: Path, dest: Path) -> Path:
    """A folder that, first on PYTHONPATH, makes `import humanoid_prior...` load `tree`'s code."""
    package = dest / "humanoid_prior"
    package.mkdir(parents=True)
    for entry in (tree / "humanoid_prior").iterdir():
        (package / entry.name).symlink_to(entry)
    for name, folder in subpackages(tree).items():
        if not (package / name).exists():  # a layout with the subpackage inside humanoid_prior/ has it
            (package / name).symlink_to(tree / folder)
    return dest


def checked_env(tree: Path, path: Path) -> dict[str, str]:
    """The environment that runs `tree`'s code; fails if any of its packages resolves elsewhere.

    A package the tree lacks would otherwise come silently from this checkout's editable install.
    """
    env = {**os.environ, "PYTHONPATH": str(path)}
    modules = ["humanoid_prior", *(f"humanoid_prior.{name}" for name in subpackages(tree))]
    probe = (
        "import importlib, os\n"
        f"for name in {modules!r}:\n"
        "    print(name, os.path.realpath(importlib.import_module(name).__file__))"
    )
    # -P: like a script (whose own folder, not the cwd, starts sys.path), the probe must not find the
    # cwd's humanoid_prior/, which lacks envs/ and would let the editable hook supply this checkout's.
    loaded = subprocess.run([sys.executable, "-P", "-c", probe], cwd=tree, env=env, capture_output=True,
                            text=True)  # fmt: skip
    if loaded.returncode != 0:
        raise SystemExit(f"the tree {tree} does not import: {loaded.stderr.strip().splitlines()[-1]}")
    for line in loaded.stdout.splitlines():
        name, file = line.split(" ", 1)
        if not Path(file).is_relative_to(tree.resolve()):
            raise SystemExit(f"the tree {tree} imports {name} from {file}, not from itself")
    return env


def git(*args: str) -> str:
    """A git command in this checkout; its output (git's own errors reach the terminal)."""
    return subprocess.run(["git", "-C", str(REPO), *args], stdout=subprocess.PIPE, text=True,
                          check=True).stdout.strip()  # fmt: skip


def checkout_commit() -> str:
    """The checkout's commit, `+dirty` when it has uncommitted changes (then the commit alone is not it)."""
    dirty = subprocess.run(["git", "-C", str(REPO), "diff", "--quiet", "HEAD"], check=False).returncode != 0
    return git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")


def run_benchmark(tree: Path, env: dict[str, str], args: list[str]) -> dict[str, float]:
    """One call of a benchmark script in `tree`; its figures of interest from the JSON it writes."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        subprocess.run([sys.executable, *args, "--json", str(out)], cwd=tree, env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        result = json.loads(out.read_text())
    return {k: float(result[k]) for k in FIGURES if k in result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default=None, help="commit of the 'before' tree (required to compare)")
    parser.add_argument("--after", default=None, help="commit of the 'after' tree (default: this checkout)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--import-tree", type=Path, default=None, metavar="DEST",
                        help="only build the import tree of this checkout in DEST (for mypy)")  # fmt: skip
    args = parser.parse_args()
    if args.import_tree is not None:
        import_tree(REPO, args.import_tree)
        return
    if args.before is None:
        parser.error("--before is required to compare two trees")

    # Commits resolved before the first round: a commit made while a long comparison runs is not the one
    # measured, and an abbreviated name may mean another commit later.
    commits = {
        "before": git("rev-parse", "--short", args.before),
        "after": git("rev-parse", "--short", args.after) if args.after else checkout_commit(),
    }
    runs: dict[str, dict[str, dict[str, list[float]]]] = {
        side: {name: {} for name in args.only} for side in commits
    }
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        trees = {side: REPO if side == "after" and args.after is None else tmp / side for side in commits}
        try:
            for side, tree in trees.items():
                if tree != REPO:
                    git("worktree", "add", "--detach", str(tree), commits[side].removesuffix("+dirty"))
            envs = {
                side: checked_env(tree, import_tree(tree, tmp / f"{side}_import"))
                for side, tree in trees.items()
            }
            for r in range(args.rounds):
                order = ("before", "after") if r % 2 == 0 else ("after", "before")
                for side in order:
                    for name in args.only:
                        t0 = time.perf_counter()
                        figures = run_benchmark(trees[side], envs[side], shlex.split(BENCHMARKS[name]))
                        for key, value in figures.items():
                            runs[side][name].setdefault(key, []).append(value)
                        print(
                            f"round {r + 1} {side:6s} {name:5s} {figures} ({time.perf_counter() - t0:.0f} s)"
                        )
        finally:
            for tree in trees.values():
                if tree != REPO and tree.exists():
                    git("worktree", "remove", "--force", str(tree))
            git("worktree", "prune")

    result = {
        "what": "throughput ratios of two trees, measured in one run, rounds interleaved",
        **commits,
        "benchmarks": {name: BENCHMARKS[name] for name in args.only},
        "runs": {
            side: {
                name: {k: [round(v, 3) for v in vs] for k, vs in figs.items()} for name, figs in per.items()
            }
            for side, per in runs.items()
        },
        "medians": {
            side: {
                name: {k: round(statistics.median(v), 3) for k, v in figs.items()}
                for name, figs in per.items()
            }
            for side, per in runs.items()
        },
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
    }
    print(json.dumps(result["medians"], indent=1))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
