"""Left-right symmetry: the mirror image of observations and actions, and PPO data augmentation with it.

A humanoid walking is (nearly) mirror-symmetric about its sagittal (x-z) plane: the mirror image of a
good step is a good step. Mirroring a transition therefore gives a second, free sample with the same
return (rsl_rl's symmetry extension; Mittal et al., "Symmetry Considerations for Learning Task
Symmetric Robot Policies", 2024). Every mirror here is a signed permutation of a vector's entries:

* base frame vectors: polar ones (velocity, gravity, offsets) flip y; axial ones (angular velocity) flip
  x and z; the command (v_x, v_y, yaw rate) flips v_y and the yaw rate;
* joints: left and right swap, roll and yaw angles change sign (per robot, `RobotCfg.mirror_joint_signs`);
* feet: left and right swap; scan points (x, y) map to (x, -y); the gait clock moves half a period
  (the feet are half a period apart, so swapping them is the same as shifting the clock).

`Mirror` holds one signed permutation per observation group and one for the actions.
`mirrored_buffer` returns SB3's rollout buffer with its mirror image appended (twice the envs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from stable_baselines3.common.buffers import DictRolloutBuffer

from humanoid_prior.envs.observations import TermSlice
from humanoid_prior.envs.robots import RobotCfg
from humanoid_prior.envs.task_cfg import ScanCfg

POLAR = ("projected_gravity", "base_lin_vel", "com_offset", "push_vel")
"""Base-frame vectors that keep x and z and flip y under the mirror."""
SCALARS = ("base_height", "friction", "added_mass", "latency_steps")
"""Terms that a mirror leaves unchanged."""


@dataclass(frozen=True)
class SignedPermutation:
    """y = x[..., index] * sign."""

    index: np.ndarray
    sign: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Mirror `x` (..., D)."""
        return x[..., self.index] * self.sign

    @staticmethod
    def concat(parts: list[SignedPermutation]) -> SignedPermutation:
        """The block-diagonal permutation of `parts` laid side by side."""
        index, sign, offset = [], [], 0
        for p in parts:
            index.append(p.index + offset)
            sign.append(p.sign)
            offset += len(p.index)
        return SignedPermutation(np.concatenate(index), np.concatenate(sign).astype(np.float64))


def _signs(*values: float) -> SignedPermutation:
    return SignedPermutation(np.arange(len(values)), np.asarray(values, dtype=np.float64))


def _identity(width: int) -> SignedPermutation:
    return SignedPermutation(np.arange(width), np.ones(width))


def _point_mirror(points: np.ndarray, what: str) -> np.ndarray:
    """Index of the (x, -y) twin of each (x, y) point; an error if the set is not mirror-symmetric."""
    twin = np.full(len(points), -1)
    for i, (x, y) in enumerate(points):
        match = np.flatnonzero(np.isclose(points[:, 0], x) & np.isclose(points[:, 1], -y))
        if len(match) != 1:
            raise ValueError(
                f"{what} is not symmetric about the robot's x-z plane: point ({x}, {y}) has no (x, -y) "
                f"twin; give symmetric scan offsets to use symmetry augmentation."
            )
        twin[i] = match[0]
    return twin


def joint_mirror(robot: RobotCfg) -> SignedPermutation:
    """The mirror of a per-joint vector (positions relative to default, velocities, actions)."""
    if not robot.mirror_joints:
        raise ValueError(
            f"robot '{robot.name}' has no mirror map; set mirror_joints and mirror_joint_signs in its "
            f"description to use symmetry augmentation."
        )
    names = list(robot.actuated_joints)
    if sorted(robot.mirror_joints) != sorted(names):
        raise ValueError(
            f"robot '{robot.name}': mirror_joints must list each actuated joint once (a permutation of "
            f"{names}), got {list(robot.mirror_joints)}."
        )
    index = np.array([names.index(partner) for partner in robot.mirror_joints])
    perm = SignedPermutation(index, np.asarray(robot.mirror_joint_signs, dtype=np.float64))
    default = np.asarray(robot.default_joint_pos)
    if not np.allclose(perm(default), default):
        raise ValueError(
            f"robot '{robot.name}': the default pose is not its own mirror image, so joint angles relative "
            f"to it cannot be mirrored; check mirror_joint_signs."
        )
    return perm


@dataclass(frozen=True)
class Mirror:
    """Signed permutations that mirror each observation group and the action vector."""

    groups: dict[str, SignedPermutation]
    actions: SignedPermutation

    @staticmethod
    def build(robot: RobotCfg, layouts: dict[str, list[TermSlice]], scan: ScanCfg) -> Mirror:
        """The mirror of a task's observation groups (`ObservationManager.layouts`) for `robot`."""
        joints = joint_mirror(robot)
        num_joints, num_feet = len(robot.actuated_joints), len(robot.feet_bodies)
        if num_feet != 2:
            raise ValueError(f"symmetry needs two feet (left, right), robot '{robot.name}' has {num_feet}.")
        feet = np.array([1, 0])
        base_points = np.array([(x, y) for x in scan.base_x for y in scan.base_y])
        base_twin = _point_mirror(base_points, "ScanCfg.base_x/base_y")
        foot_twin = _point_mirror(np.asarray(scan.foot_xy, dtype=np.float64), "ScanCfg.foot_xy")
        per_foot = len(foot_twin)
        feet_scan = (feet[:, None] * per_foot + foot_twin[None, :]).ravel()
        force = (feet[:, None] * 3 + np.arange(3)[None, :]).ravel()
        terms: dict[str, SignedPermutation] = {
            "base_ang_vel": _signs(-1, 1, -1),
            "commands": _signs(1, -1, -1),
            "joint_pos": joints,
            "joint_vel": joints,
            "actions": joints,
            "gait_clock": _signs(-1, -1),
            "height_scan": SignedPermutation(base_twin, np.ones(len(base_twin))),
            "feet_height_scan": SignedPermutation(feet_scan, np.ones(len(feet_scan))),
            "feet_contact_force": SignedPermutation(force, np.tile([1.0, -1.0, 1.0], num_feet)),
            "feet_contact": SignedPermutation(feet, np.ones(num_feet)),
            "motor_strength": SignedPermutation.concat(
                [SignedPermutation(joints.index, np.ones(num_joints))] * 2
            ),
        }
        terms |= {name: _signs(1, -1, 1) for name in POLAR}
        groups = {}
        for group, layout in layouts.items():
            parts = []
            for term in layout:
                width = term.stop - term.start
                if term.name in SCALARS:
                    parts.append(_identity(width))
                elif term.name in terms:
                    parts.append(terms[term.name])
                else:
                    raise ValueError(f"no mirror is defined for observation term {term.name!r}.")
                if len(parts[-1].index) != width:
                    raise ValueError(
                        f"mirror of {term.name!r} has {len(parts[-1].index)} entries, want {width}."
                    )
            groups[group] = SignedPermutation.concat(parts)
        return Mirror(groups, joints)


def mirrored_buffer(buffer: DictRolloutBuffer, mirror: Mirror, normaliser: Any = None) -> DictRolloutBuffer:
    """`buffer` (a full rollout with returns and advantages) followed by its mirror image.

    The mirrored transitions keep their returns and advantages (a symmetric task gives the mirror image
    the same return) and the original's old log-probability and value, as rsl_rl does: PPO's ratio for
    a mirror image is π_new(a'|s') / π_old(a|s). Using π_old(a'|s') instead looks cleaner but is not
    safe: while the policy is not yet symmetric, a' lies far in the tail of π_old(·|s'), the smallest
    update moves its log-probability by hundreds of nats, and the ratio overflowed to inf and NaN weights
    within 0.8 M steps here. With the sampled action's own probability below, the ratio is bounded
    (a sampled action is never far in its own tail), and PPO's clip does the rest. Observations in the
    buffer are normalised: they are mirrored in raw units (`normaliser`: SB3's VecNormalize) so that an
    asymmetric running mean does not leak into the mirror image.
    """
    steps, n = buffer.buffer_size, buffer.n_envs
    out = DictRolloutBuffer(
        steps, buffer.observation_space, buffer.action_space, device=buffer.device,
        gae_lambda=buffer.gae_lambda, gamma=buffer.gamma, n_envs=2 * n,
    )  # fmt: skip
    flat = {key: value.reshape(steps * n, -1) for key, value in buffer.observations.items()}
    keys = set(normaliser.norm_obs_keys) if normaliser is not None else set()
    raw = {}
    for key, value in flat.items():
        if key in keys:
            rms = normaliser.obs_rms[key]
            value = value * np.sqrt(rms.var + normaliser.epsilon) + rms.mean
        raw[key] = mirror.groups[key](value)
    mirrored_flat = normaliser.normalize_obs(raw) if normaliser is not None else raw
    for key, value in buffer.observations.items():
        mirrored = np.asarray(mirrored_flat[key]).reshape(value.shape).astype(value.dtype)
        out.observations[key] = np.concatenate([value, mirrored], axis=1)
    actions = mirror.actions(buffer.actions).astype(buffer.actions.dtype)
    out.actions = np.concatenate([buffer.actions, actions], axis=1)
    for name in ("rewards", "returns", "advantages", "episode_starts", "log_probs", "values"):
        setattr(out, name, np.concatenate([getattr(buffer, name)] * 2, axis=1))
    out.pos, out.full = steps, True
    return out
