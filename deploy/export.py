"""Export a trained teacher or student: `policy.pt` (TorchScript), `policy.onnx` and `deploy.json`.

Both policy files contain the observation normaliser and map the runtime's raw observation (the
flattened history of one observation group, oldest frame first) to deterministic, clipped actions.
Before anything is written, observations are recorded by stepping the training env with the policy,
and the TorchScript and ONNX Runtime outputs must equal the training policy's within `TOLERANCE`.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import logging
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from humanoid_prior import __version__
from humanoid_prior.config import to_dict
from humanoid_prior.envs.locomotion import LocomotionEnv
from humanoid_prior.normaliser import ObsNormaliser
from humanoid_prior.policies.actor_critic import NetworkCfg
from humanoid_prior.policy_io import LoadedPolicy, LoadedStudent, load_policy

from .inference import OnnxPolicy, TorchScriptPolicy
from .manifest import Manifest, ObsLayout, ObsTerm, SafetyCfg, config_hash

TOLERANCE = 1e-5
"""Largest allowed |exported - training| action difference on the recorded observations."""


class ExportCheckError(RuntimeError):
    """An exported policy whose outputs differ from the training policy's."""


class NormalisedActor(nn.Module):
    """raw observation (B, D) float32 -> clip((x - mean) / std, ±clip) -> actor MLP -> mean action, clipped.

    The normalisation runs in float64, as the training-time normaliser does (numpy, float64 statistics),
    so that the exported actions match the training policy's to ~1e-7 rather than ~1e-5.
    """

    def __init__(
        self, normaliser: ObsNormaliser, key: str, actor: nn.Module, head: nn.Module, action_clip: float
    ) -> None:
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(np.asarray(normaliser.mean[key], dtype=np.float64)))
        self.register_buffer("std", torch.as_tensor(normaliser.std(key)))
        self.actor = actor
        self.head = head
        self.clip_obs = float(normaliser.clip)
        self.action_clip = float(action_clip)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Actions (B, J) for raw observations (B, D)."""
        # mypy sees buffers as Tensor | Module; TorchScript cannot read class-level annotations here.
        x = ((obs.double() - self.mean) / self.std).clamp(-self.clip_obs, self.clip_obs).float()  # type: ignore[operator]
        return self.head(self.actor(x)).clamp(-self.action_clip, self.action_clip)


def observation_group(policy: LoadedPolicy) -> str:
    """The observation group a policy's frames are: "proprio" for a student, the teacher's own group."""
    if isinstance(policy, LoadedStudent):
        return "proprio"
    network = policy.cfg.network
    assert isinstance(network, NetworkCfg)
    return network.obs_group


def history_length(policy: LoadedPolicy) -> int:
    """Frames the policy reads (a teacher: 1)."""
    return policy.history_len if isinstance(policy, LoadedStudent) else 1


def policy_input_key(policy: LoadedPolicy) -> str:
    """The normaliser key of the policy's input: the teacher's observation group, or the student's history."""
    return "proprio_history" if isinstance(policy, LoadedStudent) else observation_group(policy)


def normalised_actor(policy: LoadedPolicy) -> NormalisedActor:
    """The deterministic actor of a loaded teacher or student, with its normaliser, on the CPU, frozen."""
    key = policy_input_key(policy)
    net = policy.policy
    module = NormalisedActor(
        policy.normaliser, key, copy.deepcopy(net.mlp_extractor.policy_net).cpu(),
        copy.deepcopy(net.action_net).cpu(), policy.cfg.task.action_clip,
    )  # fmt: skip
    return module.eval().requires_grad_(False)


def record_observations(
    policy: LoadedPolicy, steps: int = 64, num_envs: int = 4, seed: int = 7
) -> tuple[np.ndarray, np.ndarray, LocomotionEnv]:
    """Step the training env with the policy; return its raw inputs (M, D), its actions (M, J) and the env.

    For a student the input is the proprio history the env keeps (the student's task). The env
    is returned open (its layouts describe the manifest); the caller closes it.
    """
    task = policy.cfg.task
    # Nominal physics: the check needs realistic observations, not 16 randomised model copies.
    task = dataclasses.replace(
        task.with_batch(num_envs, nthread=1), domain_rand=dataclasses.replace(task.domain_rand, enabled=False)
    )
    env = LocomotionEnv(task, seed=seed)
    obs = env.reset(seed=seed)
    inputs, actions = [], []
    for _ in range(steps):
        inputs.append(obs[policy_input_key(policy)].copy())
        act = np.asarray(policy(obs), dtype=np.float32)
        actions.append(act)
        obs, *_ = env.step(act)
    return np.concatenate(inputs), np.concatenate(actions), env


def build_manifest(policy: LoadedPolicy, env: LocomotionEnv, run_dir: Path) -> Manifest:
    """The manifest of `policy` (trained in `env`'s task) without the export check's results."""
    cfg, task, robot = policy.cfg, policy.cfg.task, env.robot
    group = observation_group(policy)
    scales = {t.name: t for t in task.observations[group].terms}
    terms = tuple(
        ObsTerm(s.name, s.stop - s.start, float(scales[s.name].scale), scales[s.name].clip)
        for s in env.observations.layouts[group]
    )
    layout = ObsLayout(group=group, terms=terms, history_len=history_length(policy))
    c = task.commands
    return Manifest(
        robot=robot.name,
        joint_names=tuple(robot.actuated_joints),
        default_joint_pos=tuple(float(v) for v in robot.default_joint_pos),
        kp=tuple(float(v) for v in robot.kp),
        kd=tuple(float(v) for v in robot.kd),
        torque_limits=tuple(float(v) for v in robot.torque_limits),
        joint_limits=tuple((float(lo), float(hi)) for lo, hi in env.robot_model.joint_range),
        action_scale=float(robot.action_scale),
        action_clip=float(task.action_clip),
        control_period_s=float(env.dt),
        gait_period_s=float(task.gait_period_s),
        observation=layout,
        command_ranges={"lin_vel_x": c.lin_vel_x, "lin_vel_y": c.lin_vel_y, "ang_vel_yaw": c.ang_vel_yaw},
        # Stop before the training termination angle: a policy never learnt to recover from there.
        safety=SafetyCfg(max_tilt_deg=min(45.0, task.terminations.max_tilt_deg)),
        config_hash=config_hash(to_dict(cfg)),
        package_version=__version__,
        source={
            "run": str(run_dir),
            "checkpoint": str(policy.checkpoint),
            "kind": policy.kind,
            "env_steps": policy.num_timesteps,
        },
        robot_description=dataclasses.asdict(robot),
        sim_truth={"contact_force_threshold": float(task.rewards.params.contact_force_threshold)},
    )


@contextlib.contextmanager
def _quiet_exporters() -> Iterator[None]:
    """Silence the exporters' progress prints and deprecation notices (the export prints its own summary)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            # torch.jit is deprecated upstream but TorchScript is what libtorch (C++) robot runtimes load.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def write_policy_files(module: NormalisedActor, input_size: int, directory: Path) -> dict[str, str]:
    """`policy.pt` (TorchScript) and `policy.onnx` (input "obs" (B, input_size), output "actions")."""
    example = torch.zeros(1, input_size)
    with _quiet_exporters():
        torch.jit.script(module).save(str(directory / "policy.pt"))
        torch.onnx.export(
            module, (example,), str(directory / "policy.onnx"), input_names=["obs"], output_names=["actions"],
            dynamic_shapes={"obs": {0: torch.export.Dim("batch", min=1, max=1_000_000)}}, dynamo=True,
            verbose=False, external_data=False,
        )  # fmt: skip
    return {"torchscript": "policy.pt", "onnx": "policy.onnx"}


@dataclass(frozen=True)
class ExportResult:
    """What `export_policy` wrote and how closely the exports match the training policy."""

    directory: Path
    manifest: Manifest
    max_abs_error: dict[str, float]
    """Largest |exported - training| action per engine on the recorded observations."""
    observations: int


def check_exports(directory: Path, inputs: np.ndarray, expected: np.ndarray) -> dict[str, float]:
    """Largest |action - expected| of each exported file on `inputs`; raises above `TOLERANCE`."""
    errors = {}
    for name, engine in (("torchscript", TorchScriptPolicy(directory / "policy.pt")),
                         ("onnx", OnnxPolicy(directory / "policy.onnx"))):  # fmt: skip
        errors[name] = float(np.abs(engine(inputs) - expected).max())
    bad = {k: v for k, v in errors.items() if not v <= TOLERANCE}
    if bad:
        raise ExportCheckError(
            f"exported policy differs from the training policy by {bad} (> {TOLERANCE}) on "
            f"{len(inputs)} recorded observations; the export is not written. Report this as a bug."
        )
    return errors


def export_policy(run_dir: Path, out_dir: Path | None = None, steps: int = 64) -> ExportResult:
    """Export the newest checkpoint of a teacher or student run into `out_dir` (default: <run>/deploy).

    Files are written to a temporary folder, checked, then moved into place, so a failed check leaves
    no half-written export behind.
    """
    out_dir = out_dir or run_dir / "deploy"
    policy = load_policy(run_dir)
    inputs, actions, env = record_observations(policy, steps=steps)
    try:
        manifest = build_manifest(policy, env, run_dir)
    finally:
        env.close()
    if inputs.shape[1] != manifest.observation.input_size:
        raise ExportCheckError(
            f"recorded inputs have {inputs.shape[1]} values but the layout gives "
            f"{manifest.observation.input_size}; the observation layout and the policy disagree."
        )
    module = normalised_actor(policy)
    expected = np.clip(actions, -manifest.action_clip, manifest.action_clip)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        staging = Path(tmp)
        files = write_policy_files(module, manifest.observation.input_size, staging)
        errors = check_exports(staging, inputs, expected)
        source = {**manifest.source, "export_check": {
            "observations": len(inputs), "tolerance": TOLERANCE, "max_abs_error": errors,
        }}  # fmt: skip
        manifest = dataclasses.replace(manifest, policy_files=files, source=source)
        manifest.save(staging)
        for name in [*files.values(), "deploy.json"]:
            shutil.move(staging / name, out_dir / name)
    return ExportResult(out_dir, manifest, errors, len(inputs))
