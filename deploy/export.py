"""Export a trained teacher or student: `policy.pt` (TorchScript), `policy.onnx` and `deploy.json`.

Both policy files contain the observation normaliser and map the runtime's raw observation (the
flattened history of one observation group, oldest frame first) to deterministic, clipped actions.
Everything comes from the run directory and its checkpoint (no env, no MuJoCo): before anything is
written, the TorchScript and ONNX Runtime outputs must equal the training policy's within `TOLERANCE` on
inputs spread over the training normaliser's range.
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
from humanoid_prior.envs.robots import RobotCfg, robot_from_dict
from humanoid_prior.normaliser import ObsNormaliser
from humanoid_prior.policies.actor_critic import NetworkCfg
from humanoid_prior.runs.policy_io import LoadedPolicy, LoadedStudent, load_policy

from .inference import OnnxPolicy, TorchScriptPolicy
from .manifest import Manifest, ObsLayout, ObsTerm, SafetyCfg, config_hash

TOLERANCE = 1e-5
"""Largest allowed |exported - training| action difference on the probe inputs."""


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


PROBE_OBSERVATIONS = 256
"""Inputs the export check feeds both the training policy and the exported files."""


def probe_observations(policy: LoadedPolicy, count: int = PROBE_OBSERVATIONS, seed: int = 7) -> np.ndarray:
    """Raw inputs (count, D) spread over what the policy saw in training, beyond its clip range included.

    Drawn from the training normaliser's mean and spread (±2 std typical, a tenth of the rows at ±3×clip
    std so the clip path is checked too); no env is needed, so export runs without MuJoCo or the terrain.
    """
    key = policy_input_key(policy)
    mean = np.asarray(policy.normaliser.mean[key], dtype=np.float64)
    std = policy.normaliser.std(key)
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((count, mean.size))
    z[: count // 10] *= 3.0 * policy.normaliser.clip
    return (mean + z * std).astype(np.float32)


def policy_actions(policy: LoadedPolicy, inputs: np.ndarray) -> np.ndarray:
    """The training policy's deterministic actions for raw inputs of its input key."""
    return np.asarray(policy({policy_input_key(policy): inputs}), dtype=np.float32)


@dataclass(frozen=True)
class TrainedIO:
    """What the manifest says about the policy's input and joints, as the checkpoint recorded it."""

    robot: RobotCfg
    obs_terms: list[tuple[str, int]]
    joint_limits: list[tuple[float, float]]


def trained_io(policy: LoadedPolicy) -> TrainedIO:
    """The robot, input layout and joint limits the checkpoint stores.

    Checkpoints written before these were stored rebuild them from a one-env copy of the task.
    """
    group = observation_group(policy)
    if policy.obs_layouts is not None and policy.joint_limits is not None and policy.robot_description:
        robot = robot_from_dict(policy.robot_description, source=f"{policy.checkpoint} robot_description")
        return TrainedIO(robot, policy.obs_layouts[group], policy.joint_limits)
    from humanoid_prior.envs.locomotion import LocomotionEnv  # older checkpoints only: needs MuJoCo

    env = LocomotionEnv(policy.cfg.task.with_batch(1, nthread=1))
    try:
        terms = [(t.name, t.stop - t.start) for t in env.observations.layouts[group]]
        limits = [(float(lo), float(hi)) for lo, hi in env.robot_model.joint_range]
        return TrainedIO(env.robot, terms, limits)
    finally:
        env.close()


def build_manifest(policy: LoadedPolicy, run_dir: Path) -> Manifest:
    """The manifest of `policy` without the export check's results; reads only the run and checkpoint."""
    cfg, task = policy.cfg, policy.cfg.task
    io_facts = trained_io(policy)
    robot = io_facts.robot
    group = observation_group(policy)
    scales = {t.name: t for t in task.observations[group].terms}
    terms = tuple(
        ObsTerm(name, size, float(scales[name].scale), scales[name].clip) for name, size in io_facts.obs_terms
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
        joint_limits=tuple(io_facts.joint_limits),
        action_scale=float(robot.action_scale),
        action_clip=float(task.action_clip),
        control_period_s=float(task.sim.sim_dt * task.sim.decimation),
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
    """Largest |exported - training| action per engine on the probe inputs."""
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
            f"{len(inputs)} probe inputs; the export is not written. Report this as a bug."
        )
    return errors


def export_policy(
    run_dir: Path,
    out_dir: Path | None = None,
    probes: int = PROBE_OBSERVATIONS,
    checkpoint: Path | None = None,
) -> ExportResult:
    """Export the newest checkpoint of a teacher or student run into `out_dir` (default: <run>/deploy).

    `checkpoint` picks another checkpoint of the run (see `load_policy`). Files are written to a
    temporary folder, checked, then moved into place, so a failed check leaves no half-written export
    behind.
    """
    out_dir = out_dir or run_dir / "deploy"
    policy = load_policy(run_dir, checkpoint)
    manifest = build_manifest(policy, run_dir)
    inputs = probe_observations(policy, count=probes)
    actions = policy_actions(policy, inputs)
    if inputs.shape[1] != manifest.observation.input_size:
        raise ExportCheckError(
            f"the policy reads {inputs.shape[1]} values but the layout gives "
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
