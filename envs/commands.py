"""Velocity commands: forward, lateral and yaw rate, resampled per env every few seconds.

With `heading_command`, a heading target is sampled instead of a yaw rate and turned into a yaw-rate
command each step by a proportional law, so robots keep turning towards a direction (legged_gym).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .frames import wrap_angle


@dataclass(frozen=True)
class CommandCfg:
    """Ranges and timing of the velocity commands."""

    lin_vel_x: tuple[float, float] = (-0.5, 1.0)
    """Forward velocity range (m/s, base frame)."""
    lin_vel_y: tuple[float, float] = (-0.3, 0.3)
    """Lateral velocity range (m/s, base frame)."""
    ang_vel_yaw: tuple[float, float] = (-0.5, 0.5)
    """Yaw-rate range (rad/s); also the clip of the heading controller's output."""
    heading_command: bool = False
    """Sample a heading target and steer towards it instead of sampling a yaw rate."""
    heading_stiffness: float = 0.5
    """Yaw rate per rad of heading error (1/s)."""
    resample_interval_s: tuple[float, float] = (10.0, 10.0)
    """Each env draws a new command after a time uniform in this range (s)."""
    standing_fraction: float = 0.05
    """Fraction of resamples that command standing still."""
    small_command: float = 0.15
    """Planar speeds and yaw rates below this are zeroed (the robot cannot track tiny commands)."""
    backward_fraction: float | None = None
    """Share of draws with v_x < 0, each side's speed uniform between 0 and its end of `lin_vel_x`;
    None draws v_x uniformly over the range. The share is of draws, before `small_command` zeroes slow
    ones and `standing_fraction` zeroes some. A short backward side drawn uniformly gets few commands
    where standing still loses much tracking reward, so a policy can stand when told to back up."""

    def __post_init__(self) -> None:
        """Check ranges (validation only)."""
        for name in ("lin_vel_x", "lin_vel_y", "ang_vel_yaw", "resample_interval_s"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"CommandCfg.{name} must be (low, high) with low <= high, got {(lo, hi)}.")
        if not 0.0 <= self.standing_fraction <= 1.0:
            raise ValueError(f"CommandCfg.standing_fraction must be in [0, 1], got {self.standing_fraction}.")
        if self.backward_fraction is not None:
            lo, hi = self.lin_vel_x
            if not (0.0 <= self.backward_fraction <= 1.0 and lo <= 0.0 <= hi):
                raise ValueError(
                    "CommandCfg.backward_fraction needs a value in [0, 1] and lin_vel_x = (low <= 0, "
                    f"high >= 0), got {self.backward_fraction} and {self.lin_vel_x}; or set it to None "
                    "(uniform v_x)."
                )


class CommandSampler:
    """Per-env commands (N, 3) = (v_x, v_y, yaw rate), vectorised over the batch."""

    def __init__(self, cfg: CommandCfg, num_envs: int, dt: float, rng: np.random.Generator) -> None:
        self.cfg = cfg
        self.dt = dt
        self.rng = rng
        self.commands = np.zeros((num_envs, 3))
        self.heading = np.zeros(num_envs)
        self.time_left = np.zeros(num_envs)
        self.standing = np.zeros(num_envs, dtype=bool)

    def resample(self, env_ids: np.ndarray) -> None:
        """Draw new commands (and their durations) for `env_ids`."""
        cfg, rng, n = self.cfg, self.rng, len(env_ids)
        if n == 0:
            return
        cmd = np.column_stack([
            self._forward_speeds(n),
            rng.uniform(*cfg.lin_vel_y, n),
            rng.uniform(*cfg.ang_vel_yaw, n),
        ])  # fmt: skip
        small_xy = np.linalg.norm(cmd[:, :2], axis=1) < cfg.small_command
        cmd[small_xy, :2] = 0.0
        cmd[np.abs(cmd[:, 2]) < cfg.small_command, 2] = 0.0
        if cfg.heading_command:
            cmd[:, 2] = 0.0  # the heading law sets the yaw rate from the next step on
        standing = rng.random(n) < cfg.standing_fraction
        cmd[standing] = 0.0
        self.commands[env_ids] = cmd
        self.standing[env_ids] = standing
        self.heading[env_ids] = rng.uniform(-np.pi, np.pi, n)
        self.time_left[env_ids] = rng.uniform(*cfg.resample_interval_s, n)

    def _forward_speeds(self, n: int) -> np.ndarray:
        lo, hi = self.cfg.lin_vel_x
        if self.cfg.backward_fraction is None:
            return self.rng.uniform(lo, hi, n)
        backward = self.rng.random(n) < self.cfg.backward_fraction
        return np.where(backward, lo, hi) * self.rng.random(n)

    def step(self, base_yaw: np.ndarray) -> None:
        """Advance timers, resample the envs whose command expired, steer towards heading targets."""
        self.time_left -= self.dt
        self.resample(np.flatnonzero(self.time_left <= 0.0))
        if self.cfg.heading_command:
            error = wrap_angle(self.heading - base_yaw)
            lo, hi = self.cfg.ang_vel_yaw
            yaw_rate = np.clip(self.cfg.heading_stiffness * error, lo, hi)
            yaw_rate[np.abs(yaw_rate) < self.cfg.small_command] = 0.0
            self.commands[:, 2] = np.where(self.standing, 0.0, yaw_rate)
