"""`deploy.json`: everything the runtime needs to run an exported policy on a robot, and nothing else.

The manifest is written next to `policy.pt` and `policy.onnx` by `humanoid_prior.deploy.export`. It
names the joints in policy order (the runtime maps them onto the robot's own order by name), their
default angles, gains and limits, the action scale and clip, the control period, the observation
layout (group, terms with sizes, scales and clips, history length and order), the command ranges the
policy was trained on, the safety thresholds, a hash of the training config and the package version.

Construction validates every field the runtime relies on (ranges, signs, limits, the joint order
against the robot the manifest names): a hand-edited or corrupted file fails here with one line naming
the field and the fix, before a robot moves.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from humanoid_prior.envs.robots import ROBOTS, get_robot

FORMAT = "humanoid_prior.deploy/1"
MANIFEST_NAME = "deploy.json"
HISTORY_ORDER = "oldest_first"
"""Frames of the history are concatenated from the oldest (t - H + 1) to the newest (t)."""


class ManifestError(ValueError):
    """A manifest that cannot be used, with a message naming the problem and the fix."""


@dataclass(frozen=True)
class ObsTerm:
    """One observation term as the policy saw it in training."""

    name: str
    """A key of `humanoid_prior.envs.observations.OBS_TERMS`."""
    size: int
    """Number of values."""
    scale: float
    """Multiplies the value."""
    clip: float | None
    """The scaled value is clipped to ±clip (None: unclipped)."""


@dataclass(frozen=True)
class ObsLayout:
    """The policy's input: `history_len` frames of one observation group, oldest first, flattened."""

    group: str
    """The training observation group a frame is ("proprio" for a student, "privileged" for a teacher)."""
    terms: tuple[ObsTerm, ...]
    """Terms of one frame, in order."""
    history_len: int = 1
    """Frames the policy reads (1: the current frame only)."""
    history_order: str = HISTORY_ORDER
    """Order of the frames in the input (always oldest first)."""

    @property
    def frame_size(self) -> int:
        """Values per frame."""
        return sum(t.size for t in self.terms)

    @property
    def input_size(self) -> int:
        """Values of the policy input (frame_size * history_len)."""
        return self.frame_size * self.history_len


@dataclass(frozen=True)
class SafetyCfg:
    """Thresholds of the runtime's safety layer."""

    soft_start_s: float = 2.0
    """Ramp from the pose at start to the default pose over this long before the policy takes over."""
    max_tilt_deg: float = 45.0
    """Emergency stop when the base tilts further than this from upright."""
    stale_state_s: float = 0.06
    """Emergency stop when the newest robot state is older than this (three 50 Hz control periods)."""
    estop_kd_scale: float = 1.0
    """Damping held in an emergency stop: kd * this, with kp = 0."""
    torque_limit_fraction: float = 1.0
    """Joint targets are moved so that the PD torque estimate stays within this fraction of the limit."""

    def __post_init__(self) -> None:
        """Check each threshold's range (validation only)."""
        rules = {
            "soft_start_s": (self.soft_start_s >= 0, ">= 0 s"),
            # 90 deg or more never trips (the base would be on its side); a policy never learnt that far.
            "max_tilt_deg": (0 < self.max_tilt_deg < 90, "in (0, 90) degrees (at most the training "
                             "termination angle)"),
            "stale_state_s": (self.stale_state_s > 0, "> 0 s (a few control periods)"),
            "estop_kd_scale": (self.estop_kd_scale > 0, "> 0 (the stop holds damping; 0 drops the robot)"),
            "torque_limit_fraction": (0 < self.torque_limit_fraction <= 1, "in (0, 1]"),
        }  # fmt: skip
        for name, (ok, rule) in rules.items():
            value = getattr(self, name)
            if not (ok and math.isfinite(value)):
                raise ManifestError(f"manifest: safety.{name} is {value}; give a finite value {rule}.")


@dataclass(frozen=True)
class Manifest:
    """The content of `deploy.json` (see the module docstring)."""

    robot: str
    """Robot name."""
    joint_names: tuple[str, ...]
    """Actuated joints in policy order."""
    default_joint_pos: tuple[float, ...]
    """Default angle per joint (rad); actions are offsets from it."""
    kp: tuple[float, ...]
    """PD stiffness per joint (N m / rad)."""
    kd: tuple[float, ...]
    """PD damping per joint (N m s / rad)."""
    torque_limits: tuple[float, ...]
    """Symmetric torque limit per joint (N m)."""
    joint_limits: tuple[tuple[float, float], ...]
    """(lower, upper) angle per joint (rad); ±inf where the joint is unlimited."""
    action_scale: float
    """Joint target = default + action_scale * clip(action, ±action_clip)."""
    action_clip: float
    """Actions are clipped to ±this before scaling."""
    control_period_s: float
    """Policy period (s)."""
    gait_period_s: float
    """Period of the gait clock observation (s)."""
    observation: ObsLayout
    """The policy's input layout."""
    command_ranges: dict[str, tuple[float, float]]
    """Trained ranges of lin_vel_x, lin_vel_y (m/s) and ang_vel_yaw (rad/s); commands are clamped to them."""
    safety: SafetyCfg = field(default_factory=SafetyCfg)
    """Safety thresholds."""
    policy_files: dict[str, str] = field(
        default_factory=lambda: {"torchscript": "policy.pt", "onnx": "policy.onnx"}
    )
    """Policy file per engine, relative to the manifest; input "obs" (B, input_size) float32, output
    "actions" (B, joints), already clipped."""
    config_hash: str = ""
    """sha256 of the training config (canonical JSON)."""
    package_version: str = ""
    """humanoid_prior version that exported the policy."""
    source: dict[str, Any] = field(default_factory=dict)
    """Where the policy came from (run, checkpoint, kind, env steps) and the export check's results."""
    robot_description: dict[str, Any] = field(default_factory=dict)
    """The full `RobotCfg` (MJCF, bodies, welds): only simulator backends need it, to build a model."""
    sim_truth: dict[str, float] = field(default_factory=dict)
    """Constants a simulator backend needs to give a teacher its privileged terms (contact threshold)."""
    format: str = FORMAT

    def __post_init__(self) -> None:
        """Check that every per-joint list has one entry per joint (validation only)."""
        n = len(self.joint_names)
        if n == 0:
            raise ManifestError(
                "manifest: joint_names is empty; re-export the policy with `train.py export`."
            )
        for name in ("default_joint_pos", "kp", "kd", "torque_limits", "joint_limits"):
            if len(getattr(self, name)) != n:
                raise ManifestError(
                    f"manifest: {name} has {len(getattr(self, name))} entries but joint_names has {n}; "
                    "give one per joint in policy order (or re-export with `train.py export`)."
                )
        if self.observation.history_order != HISTORY_ORDER:
            raise ManifestError(
                f"manifest: observation.history_order is '{self.observation.history_order}'; "
                f"this runtime builds '{HISTORY_ORDER}' histories only."
            )
        missing = {"lin_vel_x", "lin_vel_y", "ang_vel_yaw"} - set(self.command_ranges)
        if missing:
            raise ManifestError(f"manifest: command_ranges lacks {sorted(missing)}.")
        for name in ("control_period_s", "gait_period_s", "action_scale", "action_clip"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ManifestError(
                    f"manifest: {name} is {value}; give a finite value > 0 (or re-export with "
                    "`train.py export`)."
                )
        _check_joint_values(self)
        _check_command_ranges(self.command_ranges)
        _check_joint_order(self)

    # --- arrays the runtime uses ------------------------------------------------------------------------

    @property
    def num_joints(self) -> int:
        """Number of actuated joints (the action size)."""
        return len(self.joint_names)

    def array(self, name: str) -> np.ndarray:
        """A per-joint field as a float64 array (joint_limits: (J, 2))."""
        return np.asarray(getattr(self, name), dtype=np.float64)

    def command_low_high(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper command bounds (v_x, v_y, yaw rate)."""
        keys = ("lin_vel_x", "lin_vel_y", "ang_vel_yaw")
        return (
            np.array([self.command_ranges[k][0] for k in keys]),
            np.array([self.command_ranges[k][1] for k in keys]),
        )

    # --- file I/O ---------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data (infinite joint limits become null)."""
        data = dataclasses.asdict(self)
        data["joint_limits"] = [[_finite_or_none(v) for v in pair] for pair in self.joint_limits]
        return data

    def save(self, directory: Path) -> Path:
        """Write `deploy.json` into `directory`."""
        path = directory / MANIFEST_NAME
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = "manifest") -> Manifest:
        """Parse `to_json` data, with errors that name the field."""
        if data.get("format") != FORMAT:
            raise ManifestError(
                f"{source}: format is {data.get('format')!r}, expected {FORMAT!r}; "
                "re-export the policy with `train.py export --run RUN_DIR`."
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ManifestError(f"{source}: unknown field(s) {unknown}; fields: {sorted(known)}.")
        try:
            obs = dict(data["observation"])
            layout = ObsLayout(
                group=str(obs["group"]),
                terms=tuple(ObsTerm(**t) for t in obs["terms"]),
                history_len=int(obs["history_len"]),
                history_order=str(obs["history_order"]),
            )
            values = dict(data)
            values["observation"] = layout
            values["safety"] = SafetyCfg(**data.get("safety", {}))
            for key in ("joint_names", "default_joint_pos", "kp", "kd", "torque_limits"):
                values[key] = tuple(data[key])
            values["joint_limits"] = tuple(
                (_none_to(lo, -math.inf), _none_to(hi, math.inf)) for lo, hi in data["joint_limits"]
            )
            values["command_ranges"] = {
                k: (float(v[0]), float(v[1])) for k, v in data["command_ranges"].items()
            }
            return cls(**values)
        except (KeyError, TypeError) as exc:
            raise ManifestError(
                f"{source}: missing or malformed field ({exc}); re-export with `train.py export`."
            ) from exc

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """Read `deploy.json` (or the `deploy.json` inside a directory)."""
        path = path / MANIFEST_NAME if path.is_dir() else path
        if not path.is_file():
            raise FileNotFoundError(
                f"no {MANIFEST_NAME} at {path}; export a run first: `train.py export --run RUN_DIR`."
            )
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{path} is not valid JSON: {exc}") from exc
        return cls.from_json(data, source=str(path))


_JOINT_RULES: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str]] = {
    "default_joint_pos": (np.isfinite, "a finite angle (rad)"),
    "kp": (lambda v: np.isfinite(v) & (v > 0), "a finite stiffness > 0 (N m / rad)"),
    "kd": (lambda v: np.isfinite(v) & (v >= 0), "a finite damping >= 0 (N m s / rad)"),
    "torque_limits": (lambda v: np.isfinite(v) & (v > 0), "a finite torque limit > 0 (N m)"),
}
"""Per-joint fields: which values are valid, and what to give instead."""


def _check_joint_values(m: Manifest) -> None:
    """Signs and limits of the per-joint fields: a negative kp pushes a joint away from its target."""
    for name, (valid, rule) in _JOINT_RULES.items():
        values = m.array(name)
        bad = np.flatnonzero(~valid(values))
        if bad.size:
            i = int(bad[0])
            raise ManifestError(
                f"manifest: {name}[{i}] ('{m.joint_names[i]}') is {values[i]}; give {rule} for every joint "
                "(or re-export with `train.py export`)."
            )
    for i, (lo, hi) in enumerate(m.joint_limits):
        if not lo < hi:  # also False for NaN
            raise ManifestError(
                f"manifest: joint_limits[{i}] ('{m.joint_names[i]}') is ({lo}, {hi}); give (lower, upper) "
                "with lower < upper (null for an unlimited side)."
            )


def _check_command_ranges(ranges: dict[str, tuple[float, float]]) -> None:
    """Each trained command range is finite, ordered and contains 0 (standing still must be commandable).

    A reversed range clamps every command to one end (it made a robot walk backwards at -0.5 m/s).
    """
    for name in ("lin_vel_x", "lin_vel_y", "ang_vel_yaw"):
        lo, hi = ranges[name]
        if not (math.isfinite(lo) and math.isfinite(hi)):
            problem = "not finite"
        elif lo > hi:
            problem = "low > high"
        elif not lo <= 0.0 <= hi:
            problem = "0 is outside it"
        else:
            continue
        raise ManifestError(
            f"manifest: command_ranges['{name}'] is ({lo}, {hi}): {problem}; give the trained "
            "[low, high] with low <= 0 <= high (or re-export with `train.py export`)."
        )


def _check_joint_order(m: Manifest) -> None:
    """`joint_names` are the robot's actuated joints in its order (swapped legs would mirror the gait).

    The reference is the robot description the policy was exported with (`robot_description`), else the
    built-in robot of that name: a built-in robot's joints may change in a later version, the exported
    description is what the policy was trained on.
    """
    described = m.robot_description.get("actuated_joints")
    if described is not None:
        expected, where = tuple(described), f"robot '{m.robot}' (robot_description.actuated_joints)"
    elif m.robot in ROBOTS:
        expected, where = get_robot(m.robot).actuated_joints, f"the built-in robot '{m.robot}'"
    else:
        raise ManifestError(
            f"manifest: robot '{m.robot}' is not a built-in robot ({', '.join(ROBOTS)}) and "
            "robot_description is empty, so joint_names cannot be checked; re-export with `train.py export` "
            "(it writes the description)."
        )
    names = tuple(m.joint_names)
    if names == expected:
        return
    if sorted(names) == sorted(expected):
        i = next(k for k, (a, b) in enumerate(zip(names, expected, strict=True)) if a != b)
        raise ManifestError(
            f"manifest: joint_names are in another order than {where}: position {i} is '{names[i]}', "
            f"expected '{expected[i]}'; list the joints in the robot's order (or re-export)."
        )
    odd = sorted(set(names) ^ set(expected))
    raise ManifestError(
        f"manifest: joint_names differ from the actuated joints of {where} (not in both: {odd}); "
        "the manifest is for another robot: re-export with `train.py export`."
    )


def config_hash(config: dict[str, Any]) -> str:
    """sha256 of a config's canonical JSON (sorted keys): equal configs give equal hashes."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _none_to(value: float | None, default: float) -> float:
    return default if value is None else float(value)
