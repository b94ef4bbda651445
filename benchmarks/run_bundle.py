"""Carry a long learning run across machines or sessions: pack what a resume needs into one archive.

A 50 M-step rough teacher takes longer on 2 cores than one working session, and a checkout's `runs/`
does not survive from one session to the next. The archive holds the run's config and bookkeeping, its
evaluation log, its TensorBoard and CSV logs (the curves) and only its newest checkpoint.

    python benchmarks/run_bundle.py pack runs/bench_teacher_g1_rough_s0 benchmarks/resume/rough_s0.tar.gz
    python benchmarks/run_bundle.py unpack benchmarks/resume/rough_s0.tar.gz    # -> runs/<run name>/

A 50 M-step run's TensorBoard events reach ~20 MB; `pack --no-tensorboard` leaves them out (the CSV log
holds the same curves), so a bundle stays small enough to commit. `pack --with FILE` carries another
file of the run as well, e.g. a policy that `checkpoints/evaluated/` kept; such a kept policy is packed
without its optimizer state (0.67 MB instead of 1.96 MB for a G1 teacher: runs from before evaluations
left it out still have it).
"""

from __future__ import annotations

import argparse
import io
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path

import torch

from humanoid_prior.runs.checkpoint import (
    EVALUATED,
    RESUME_ONLY,
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    policy_snapshot,
)
from humanoid_prior.runs.run_dir import EVALS, SUPERSEDED

BOOKKEEPING = (
    "config.json",
    "meta.json",
    "warm_start.json",
    EVALS,
    SUPERSEDED,  # rows a resume set aside: kept, so a later reader sees what was evaluated
    "robot.yaml",
    "robot_source.json",
)
CSV_LOGS = "progress_*.csv"
TENSORBOARD_LOGS = "events.out.tfevents.*"
COMMIT_LIMIT_MB = 5.0
"""A bundle above this is too large to commit beside the code; pack prints a warning."""


def members(run_dir: Path, tensorboard: bool = True, extra: Sequence[Path] = ()) -> list[Path]:
    """The files of `run_dir` a resume (and the curves) need: bookkeeping, logs, the newest checkpoint.

    `extra`: other files of the run (relative to it) to carry too, e.g. a policy an evaluation kept.
    """
    files = [run_dir / name for name in BOOKKEEPING if (run_dir / name).is_file()]
    patterns = (CSV_LOGS, TENSORBOARD_LOGS) if tensorboard else (CSV_LOGS,)
    files += sorted(p for pattern in patterns for p in run_dir.glob(pattern))
    files.append(latest_checkpoint(run_dir / "checkpoints"))
    for name in extra:
        path = run_dir / name
        if not path.is_file() or not path.resolve().is_relative_to(run_dir.resolve()):
            raise SystemExit(f"error: --with {name}: no such file inside {run_dir}")
        files.append(path)
    return files


def pack(run_dir: Path, archive: Path, tensorboard: bool = True, extra: Sequence[Path] = ()) -> None:
    """Write `archive` (.tar.gz) with `members(run_dir, tensorboard, extra)`, under the run's own name."""
    if not (run_dir / "config.json").is_file():
        raise SystemExit(f"error: {run_dir} has no config.json; is it a run directory?")
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_name(archive.name + ".tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        for path in members(run_dir, tensorboard, extra):
            name = str(path.relative_to(run_dir.parent))
            if path.parent.resolve() == (run_dir / EVALUATED).resolve():
                add_kept_policy(tar, path, name)
            else:
                tar.add(path, arcname=name)
    tmp.replace(archive)
    size_mb = archive.stat().st_size / 1e6
    print(f"written: {archive} ({size_mb:.1f} MB)")
    if size_mb > COMMIT_LIMIT_MB:
        hint = " (try --no-tensorboard)" if tensorboard else ""
        print(f"warning: over {COMMIT_LIMIT_MB:.0f} MB, too large to commit{hint}", file=sys.stderr)


def add_kept_policy(tar: tarfile.TarFile, path: Path, name: str) -> None:
    """Add a policy an evaluation kept, without what only a resume reads (`RESUME_ONLY`)."""
    try:
        data = load_checkpoint(path)
    except CheckpointError as exc:
        raise SystemExit(f"error: --with {name}: {exc}") from None
    if not set(RESUME_ONLY) & set(data):
        tar.add(path, arcname=name)
        return
    buffer = io.BytesIO()
    torch.save(policy_snapshot(data), buffer)
    info = tar.gettarinfo(str(path), arcname=name)
    info.size = buffer.tell()
    buffer.seek(0)
    tar.addfile(info, buffer)


def unpack(archive: Path, runs: Path) -> None:
    """Extract `archive` into `runs/`; refuses to overwrite a run that is already there."""
    with tarfile.open(archive, "r:gz") as tar:
        names = tar.getnames()
        (top,) = {Path(n).parts[0] for n in names}
        if (runs / top).exists():
            raise SystemExit(f"error: {runs / top} exists already; move it away or resume it as it is.")
        tar.extractall(runs, filter="data")
    print(f"unpacked: {runs / top} ({len(names)} files); resume it: run the command in its meta.json again")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("pack")
    p.add_argument("run_dir", type=Path)
    p.add_argument("archive", type=Path)
    p.add_argument(
        "--no-tensorboard",
        action="store_true",
        help="leave out the TensorBoard events (the CSV keeps the curves)",
    )
    p.add_argument(
        "--with", dest="extra", type=Path, action="append", default=[],
        help="another file of the run to carry, relative to it (repeatable), e.g. a policy that "
        "checkpoints/evaluated/ kept",
    )  # fmt: skip
    u = sub.add_parser("unpack")
    u.add_argument("archive", type=Path)
    u.add_argument("--runs", type=Path, default=Path("runs"))
    args = parser.parse_args()
    if args.action == "pack":
        pack(args.run_dir, args.archive, tensorboard=not args.no_tensorboard, extra=args.extra)
    else:
        unpack(args.archive, args.runs)


if __name__ == "__main__":
    main()
