"""Checkpoint files: one file per checkpoint, written atomically, validated when read.

Contract: a checkpoint is a `torch.save`d dict of tensors and plain data, loadable with
`weights_only=True`. Required keys are in `REQUIRED`; `load_checkpoint` fails with a message naming
the problem when the file is missing, truncated or corrupt, from another format, or for another robot
or observation layout than the caller expects. Writing goes to a temporary file in the same folder,
flushed to disk, then renamed over the target, so a run killed mid-write leaves the previous
checkpoint intact.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import torch

FORMAT = "humanoid_prior.checkpoint/1"  # a file format's name (not a module path: it stays when modules move)
REQUIRED = ("format", "kind", "robot", "obs_sizes", "action_dim", "config", "policy", "num_timesteps")
_NAME = re.compile(r"ckpt_(\d+)\.pt$")
EVALUATED = Path("checkpoints") / "evaluated"
"""Where a run keeps the checkpoint of each periodic evaluation, apart from the pruned newest ones."""
RESUME_ONLY = ("optimizer", "disc_optimizer")
"""Payload entries only a resumed run reads: the policies kept at evaluations leave them out. Those are
loaded, warm-started from or exported, never resumed, and the teacher's Adam moments are ~1.3 of its
~2 MB, which kept bundles of a run from carrying more than a few of its evaluated policies."""


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used, with the reason and what to do."""


def save_checkpoint(path: Path, payload: Mapping[str, Any]) -> Path:
    """Write `payload` to `path` atomically (temporary file + fsync + rename)."""
    missing = [k for k in REQUIRED if k != "format" and k not in payload]
    if missing:
        raise ValueError(f"checkpoint payload lacks {missing}")
    return atomic_write(path, lambda f: torch.save({"format": FORMAT, **payload}, f))


def policy_snapshot(payload: Mapping[str, Any]) -> dict[str, Any]:
    """`payload` without what only a resume needs (`RESUME_ONLY`)."""
    return {k: v for k, v in payload.items() if k not in RESUME_ONLY}


def atomic_write(path: Path, write: Callable[[BinaryIO], Any]) -> Path:
    """Call `write` on a temporary file next to `path`, fsync it, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def checkpoint_path(directory: Path, iteration: int) -> Path:
    """Name of the checkpoint of `iteration` in `directory`."""
    return directory / f"ckpt_{iteration:07d}.pt"


def list_checkpoints(directory: Path) -> list[Path]:
    """Checkpoints in `directory`, oldest first (temporary files of interrupted writes are ignored)."""
    found = [(int(m.group(1)), p) for p in directory.glob("ckpt_*.pt") if (m := _NAME.search(p.name))]
    return [p for _, p in sorted(found)]


def prune_checkpoints(directory: Path, keep: int) -> None:
    """Delete all but the newest `keep` checkpoints."""
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)


def latest_checkpoint(directory: Path) -> Path:
    """The newest checkpoint in `directory`, or a clear error."""
    found = list_checkpoints(directory)
    if not found:
        raise CheckpointError(
            f"no checkpoint (ckpt_*.pt) in {directory}; is this a run directory that saved one?"
        )
    return found[-1]


UNREADABLE = (
    EOFError,
    RuntimeError,
    pickle.UnpicklingError,
    zipfile.BadZipFile,
    ValueError,
    IndexError,
    KeyError,
)
"""What `torch.load` raises on a file that is not a readable checkpoint. IndexError and KeyError come from
its weights-only unpickler on garbled opcodes ('pop from empty list', a missing memo key: ~5% of random
4 KiB files)."""


def load_checkpoint(
    path: Path,
    *,
    kind: str | None = None,
    robot: str | None = None,
    obs_sizes: Mapping[str, int] | None = None,
    action_dim: int | None = None,
) -> dict[str, Any]:
    """Read and validate a checkpoint; every expectation given is checked against its contents."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except UNREADABLE as exc:
        # torch's own message may advise loading with weights_only=False: never pass that on about a
        # file that failed to load (it would run whatever code the file holds).
        raise CheckpointError(
            f"checkpoint {path} is corrupt, truncated or not a checkpoint ({type(exc).__name__}); "
            "resume from an earlier checkpoint in the same folder or delete this file."
        ) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(
            f"{path} is not a humanoid_prior checkpoint (format {found!r}, want {FORMAT!r})."
        )
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} lacks {missing}; it was written by an incompatible version."
        )
    if kind is not None and data["kind"] != kind:
        raise CheckpointError(f"checkpoint {path} holds a {data['kind']} policy, not a {kind}.")
    if robot is not None and data["robot"] != robot:
        raise CheckpointError(
            f"checkpoint {path} was trained for robot '{data['robot']}', but this run uses '{robot}'; "
            "pick the matching --task.robot or another checkpoint."
        )
    if obs_sizes is not None and dict(data["obs_sizes"]) != dict(obs_sizes):
        raise CheckpointError(
            f"checkpoint {path} has observation layout {dict(data['obs_sizes'])}, but the env produces "
            f"{dict(obs_sizes)}; the observation terms or robot changed since it was written."
        )
    if action_dim is not None and data["action_dim"] != action_dim:
        raise CheckpointError(f"checkpoint {path} has {data['action_dim']} actions, the env {action_dim}.")
    return data
