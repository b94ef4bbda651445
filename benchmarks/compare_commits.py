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
from pathlib import Path

from humanoid_prior.monitoring import machine

REPO = Path(__file__).resolve().parents[1]
TOP_LEVEL_PACKAGES = ("envs", "policies", "deploy")
"""Folders at the repository root that install under `humanoid_prior.` (pyproject's package-dir)."""

BENCHMARKS = {
    "sim": "benchmarks/sim_throughput.py --robot g1 --num-envs 64 --task rough --repeats 3",
    "train": "benchmarks/train_throughput.py --preset g1_flat --rounds 1",
}
"""Each benchmark writes a JSON with a `ratio` (and sim_throughput a `task_overhead`); one call per round."""
FIGURES = ("ratio", "task_overhead")


def import_tree(tree: Path, dest: Path) -> Path:
    """A folder that, first on PYTHONPATH, makes `import humanoid_prior...` load `tree`'s code."""
    package = dest / "humanoid_prior"
    package.mkdir(parents=True)
    for entry in (tree / "humanoid_prior").iterdir():
        (package / entry.name).symlink_to(entry)
    for name in TOP_LEVEL_PACKAGES:
        (package / name).symlink_to(tree / name)
    return dest


def checked_env(tree: Path, path: Path) -> dict[str, str]:
    """The environment that runs `tree`'s code; fails if the package still resolves elsewhere."""
    env = {**os.environ, "PYTHONPATH": str(path)}
    probe = "import humanoid_prior.envs.robots as m, os; print(os.path.realpath(m.__file__))"
    # -P: like a script (whose own folder, not the cwd, starts sys.path), the probe must not find the
    # cwd's humanoid_prior/, which lacks envs/ and would let the editable hook supply this checkout's.
    loaded = subprocess.run(
        [sys.executable, "-P", "-c", probe], cwd=tree, env=env, capture_output=True, text=True, check=True
    )
    if not Path(loaded.stdout.strip()).is_relative_to(tree.resolve()):
        raise SystemExit(f"the tree {tree} imports the package from {loaded.stdout.strip()}, not from itself")
    return env


def run_benchmark(tree: Path, env: dict[str, str], args: list[str]) -> dict[str, float]:
    """One call of a benchmark script in `tree`; its figures of interest from the JSON it writes."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        subprocess.run([sys.executable, *args, "--json", str(out)], cwd=tree, env=env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        result = json.loads(out.read_text())
    return {k: float(result[k]) for k in FIGURES if k in result}


def checkout_commit() -> str:
    """The checkout's commit, `+dirty` when it has uncommitted changes (then the commit alone is not it)."""
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    dirty = subprocess.run(["git", "-C", str(REPO), "diff", "--quiet", "HEAD"], check=False).returncode != 0
    return head + ("+dirty" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="commit of the 'before' tree")
    parser.add_argument("--after", default=None, help="commit of the 'after' tree (default: this checkout)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        trees: dict[str, Path] = {}
        worktrees = []
        for side, rev in (("before", args.before), ("after", args.after)):
            if rev is None:
                trees[side] = REPO
                continue
            trees[side] = tmp / side
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(trees[side]), rev],
                           check=True, capture_output=True)  # fmt: skip
            worktrees.append(trees[side])
        try:
            envs = {
                side: checked_env(tree, import_tree(tree, tmp / f"{side}_import"))
                for side, tree in trees.items()
            }
            runs: dict[str, dict[str, dict[str, list[float]]]] = {
                side: {name: {} for name in args.only} for side in trees
            }
            for r in range(args.rounds):
                order = ("before", "after") if r % 2 == 0 else ("after", "before")
                for side in order:
                    for name in args.only:
                        t0 = time.perf_counter()
                        figures = run_benchmark(trees[side], envs[side], shlex.split(BENCHMARKS[name]))
                        for key, value in figures.items():
                            runs[side][name].setdefault(key, []).append(round(value, 3))
                        print(
                            f"round {r + 1} {side:6s} {name:5s} {figures} ({time.perf_counter() - t0:.0f} s)"
                        )
        finally:
            for tree in worktrees:
                subprocess.run(
                    ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False
                )

    result = {
        "what": "throughput ratios of two trees, measured in one run, rounds interleaved",
        "before": args.before,
        "after": args.after or checkout_commit(),
        "benchmarks": {name: BENCHMARKS[name] for name in args.only},
        "runs": runs,
        "medians": {
            side: {name: {k: statistics.median(v) for k, v in figs.items()} for name, figs in per.items()}
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
