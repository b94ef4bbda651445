"""Training configurations: typed dataclasses with a docstring per field, variants by factory functions.

Every field can be overridden on the command line (`train.py teacher --ppo.learning-rate 3e-4`);
presets only choose starting values and never rewrite what the user passes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

from humanoid_prior.algorithms.ppo import check_update_precision
from humanoid_prior.config_io import from_dict
from humanoid_prior.envs.presets import parse_preset_name
from humanoid_prior.envs.robots import select_robot
from humanoid_prior.envs.task_cfg import TaskCfg, task_preset
from humanoid_prior.envs.terminations import DEFAULT_TERMS
from humanoid_prior.policies.actor_critic import NetworkCfg
from humanoid_prior.policies.discriminator import DiscriminatorCfg


@dataclass(frozen=True)
class PPOCfg:
    """PPO hyperparameters (stable-baselines3 names), legged-robot defaults sized for 2 CPU cores."""

    n_steps: int = 32
    """Control steps per env per iteration (rollout length); samples per iteration = n_steps * num_envs."""
    batch_size: int = 1024
    """Minibatch size (samples per gradient step); 128 envs x 32 steps gives 4 minibatches."""
    n_epochs: int = 5
    """Passes over each rollout."""
    learning_rate: float = 5e-4
    """Initial learning rate (Adam)."""
    lr_schedule: str = "adaptive"
    """'adaptive': follow the KL of each update towards `desired_kl` (rsl_rl); 'linear': decay to
    lr_final_fraction of the start over the run; 'constant': keep it."""
    desired_kl: float = 0.02
    """KL per update that the adaptive learning rate aims for, measured after the whole update. rsl_rl
    aims 0.01 at the KL before each minibatch step, on average about half of the update's final KL;
    with 0.01 here the rate sank to ~7e-5 within 1 M steps and walking appeared ~2 M steps later
    (docs/results/teacher_levers.md)."""
    lr_final_fraction: float = 0.1
    """Final learning rate as a fraction of the initial one (linear schedule)."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_range: float = 0.2
    """PPO ratio clip."""
    ent_coef: float = 0.005
    """Entropy bonus."""
    vf_coef: float = 1.0
    """Value-loss weight."""
    max_grad_norm: float = 1.0
    """Gradient clipping."""
    target_kl: float | None = None
    """Stop an iteration's epochs early when the approximate KL exceeds 1.5x this (None: never; the
    adaptive learning rate keeps the KL in check instead). Logged as train/early_stopped."""
    symmetry: bool = True
    """Left-right mirror augmentation of every rollout (`humanoid_prior.algorithms.symmetry`); needs the
    robot's mirror map (`RobotCfg.mirror_joints`)."""
    update_precision: str = "float32"
    """'float32', or 'bfloat16': the actor's and critic's hidden layers run under bfloat16 autocast in the
    update (`humanoid_prior.algorithms.ppo.trunk_precision`); collection, heads and loss stay float32."""

    def __post_init__(self) -> None:
        """Check sizes and rates (validation only)."""
        for name in ("batch_size", "n_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"--ppo.{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}."
                )
        if self.n_steps < 2:
            raise ValueError(
                f"--ppo.n-steps must be at least 2 (SB3 needs two steps per rollout), got {self.n_steps}."
            )
        if not self.learning_rate > 0 or not self.desired_kl > 0:
            raise ValueError("--ppo.learning-rate and --ppo.desired-kl must be > 0.")
        check_update_precision(self.update_precision)
        if self.lr_schedule not in ("adaptive", "linear", "constant"):
            raise ValueError(
                f"--ppo.lr-schedule must be 'adaptive', 'linear' or 'constant', got '{self.lr_schedule}'."
            )


@dataclass(frozen=True)
class RunCfg:
    """Where a run lives, how long it lasts and what it records."""

    total_steps: int = 20_000_000
    """Environment steps (summed over envs) to train for."""
    time_limit_min: float | None = None
    """Stop after this much wall-clock training time (minutes), whichever comes first."""
    run_dir: str = "runs"
    """Parent folder of run directories."""
    name: str | None = None
    """Run name (default: <robot>_<terrain>_<kind>_<date-time>)."""
    seed: int = 0
    """Seed of the env, the networks and the sampling."""
    checkpoint_every: int = 50
    """Iterations between checkpoints."""
    keep_checkpoints: int = 3
    """Checkpoints kept on disk (older ones are deleted)."""
    video_every: int = 1000
    """Iterations between policy videos (0: none). A 5 s video takes ~16 s to render on 2 cores (software
    GL), so 1000 (~5 min of training here) keeps its cost near 5%."""
    video_seconds: float = 5.0
    """Length of each video."""
    wandb_project: str = "humanoid_prior"
    """Weights & Biases project; the mode comes from WANDB_MODE (default offline)."""
    device: str = "auto"
    """Torch device for the networks ('cpu', 'cuda', or 'auto')."""
    progress_bar: bool = True
    """Show a progress bar with steps/s and ETA."""
    eval_every_steps: int = 0
    """Run the evaluation protocol (`humanoid_prior.evaluation`) every this many env steps and log it
    (eval/* in TensorBoard and W&B, one line per evaluation in <run>/evals.jsonl); 0: never."""
    rollout_threads: int = 1
    """Torch threads while collecting rollouts (the update uses all); see humanoid_prior/algorithms/ppo.py."""
    init_from: str | None = None
    """A teacher run directory to start from (its newest checkpoint) or one of its checkpoint files, e.g.
    the flat teacher for the rough one: weights, normaliser, learning rate and step count carry over
    (`runners.warm_start`)."""

    def __post_init__(self) -> None:
        """Check counts and the device (validation only)."""
        for name in ("total_steps", "checkpoint_every", "keep_checkpoints", "rollout_threads"):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"--run.{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}."
                )
        if self.video_every < 0 or self.eval_every_steps < 0:
            raise ValueError("--run.video-every and --run.eval-every-steps must be >= 0 (0: never).")
        if self.device not in ("auto", "cpu") and not self.device.startswith("cuda"):
            raise ValueError(f"--run.device must be 'auto', 'cpu' or 'cuda[:N]', got '{self.device}'.")


@dataclass(frozen=True)
class TeacherCfg:
    """A privileged teacher training run."""

    task: TaskCfg = field(default_factory=TaskCfg)
    """The locomotion task (robot, terrain, rewards, randomisation, batch size)."""
    network: NetworkCfg = field(default_factory=NetworkCfg)
    """Actor and critic sizes; both read the privileged group."""
    ppo: PPOCfg = field(default_factory=PPOCfg)
    """PPO hyperparameters."""
    run: RunCfg = field(default_factory=RunCfg)
    """Run bookkeeping."""


T = TypeVar("T")

LEGACY_FIELDS = ("terrain_name",)
"""Top-level fields older run configs wrote that are derived now (`TaskCfg.terrain_name`)."""


def _upgrade_terminations(data: Any) -> Any:
    """Older configs switched the base-contact termination with a flag; now it is a named term."""
    if isinstance(data, dict):
        data = {k: _upgrade_terminations(v) for k, v in data.items()}
        old = data.get("terminations")
        if isinstance(old, dict) and "base_contact" in old:
            old = dict(old)
            keep = old.pop("base_contact")
            old.setdefault("terms", [t for t in DEFAULT_TERMS if keep or t != "base_contact"])
            data["terminations"] = old
    return data


def from_saved(cls: type[T], data: dict[str, Any]) -> T:
    """A config saved by a run (config.json, a checkpoint's copy), older ones' derived fields dropped."""
    data = _upgrade_terminations(data)
    return from_dict(cls, {k: v for k, v in data.items() if k not in LEGACY_FIELDS})


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{"a.b.c": value} for a nested config dict."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else key))
    return out


def learning_differences(today: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Settings (dotted path -> `other`'s value) in which two saved teacher configs differ in what is learnt.

    Both are read as a run would load them (`from_saved`: renamed fields upgraded, fields added since
    filled with their defaults; a reward term one side lacks counts as weight 0), so only real
    differences remain. Run bookkeeping (`run.*`) and simulator threads do not change what is learnt and
    are ignored, and so is a value where `today` has None: that means "the robot's own value", which
    older configs wrote out (base_height_target 0.78 for the G1).
    """
    base = _flatten(to_dict(from_saved(TeacherCfg, today)))
    old = _flatten(to_dict(from_saved(TeacherCfg, other)))
    # Mappings (reward weights) are saved as they were: a term one side lacks is a term at weight 0.
    pairs = {key: (base.get(key, 0.0), old.get(key, 0.0)) for key in sorted(set(base) | set(old))}
    return {
        key: other_value
        for key, (value, other_value) in pairs.items()
        if value != other_value
        and value is not None
        and not key.startswith("run.")
        and key != "task.sim.nthread"
    }


TEACHER_STEPS = {"flat": 10_000_000, "rough": 50_000_000}
"""Env-step budget of a teacher preset by terrain (the flat G1 teacher meets its target at 6-7 M)."""


def teacher_preset(
    robot: str = "g1", terrain: str = "rough", num_envs: int = 128, robot_file: str | None = None
) -> TeacherCfg:
    """A teacher run for a robot (built-in, or a description file) on a terrain preset.

    Symmetry augmentation is on where the robot has a mirror map (`RobotCfg.mirror_joints`).
    """
    task = task_preset(robot, terrain, num_envs, robot_file)
    mirror = bool(select_robot(robot, robot_file).mirror_joints)
    run = RunCfg(total_steps=TEACHER_STEPS[terrain])
    return TeacherCfg(task=task, ppo=PPOCfg(symmetry=mirror), run=run)


def named_teacher_preset(name: str) -> TeacherCfg:
    """A teacher preset by its name in `envs.presets`, e.g. 'g1_flat', 'h1_rough'."""
    return teacher_preset(*parse_preset_name(name))


def g1_flat() -> TeacherCfg:
    """G1 on flat ground: the fast sanity run (10 M env steps)."""
    return named_teacher_preset("g1_flat")


def g1_rough() -> TeacherCfg:
    """G1 on the rough-terrain curriculum: the default teacher (50 M env steps)."""
    return named_teacher_preset("g1_rough")


@dataclass(frozen=True)
class TeacherDataCfg:
    """How much teacher motion to record and when to record it again."""

    transitions: int = 200_000
    """Transitions (s, s') to store (~15 MB for the G1 at float16)."""
    num_envs: int = 128
    """Envs stepped together while recording."""
    refresh: str = "if_teacher_changed"
    """'if_teacher_changed': reuse data made from the same teacher checkpoint; 'always': record again."""
    seed: int = 123
    """Seed of the recording env."""


STUDENT_METHODS = ("tmp", "distill", "ppo_proprio")
"""'tmp': the teacher motion prior (PPO + style reward + aux heads + imitation); 'distill': DAgger-style
action distillation only; 'ppo_proprio': PPO from scratch on proprioception (critic too)."""


@dataclass(frozen=True)
class StudentNetworkCfg:
    """Sizes of the student's actor (on the proprio history) and critic."""

    actor_hidden: tuple[int, ...] = (256, 128, 64)
    """Hidden layer widths of the actor MLP; the auxiliary heads branch off the last one."""
    critic_hidden: tuple[int, ...] = (256, 128, 64)
    """Hidden layer widths of the critic MLP."""
    init_noise_std: float = 0.5
    """Initial standard deviation of the Gaussian action noise (lower than a teacher's 1.0: the student
    starts by imitating, and exploration noise that large makes its early rollouts mostly falls)."""


@dataclass(frozen=True)
class StudentCfg:
    """A student training run from a trained teacher (see ARCHITECTURE.md, "Student")."""

    teacher: str = ""
    """Teacher run directory (runs/<name>); its task is the student's unless overridden."""
    method: str = "tmp"
    """One of STUDENT_METHODS."""
    gan: bool = True
    """TMP: use the motion discriminator's style reward (--no-gan for the ablation)."""
    aux: bool = True
    """TMP: train the auxiliary heads (--no-aux for the ablation)."""
    imitation: bool = True
    """TMP: imitate the teacher's action (--no-imitation for the ablation)."""
    history_len: int = 6
    """Frames of proprioception the actor sees (oldest first)."""
    task_weight: float = 1.0
    """Weight of the task reward in the student's reward."""
    style_weight: float = 0.5
    """Per-second weight of the style reward max(0, 1 - (d - 1)^2 / 4) (so 0.5 * dt per step)."""
    aux_terms: tuple[str, ...] = ("base_lin_vel", "feet_height_scan", "feet_contact")
    """Privileged terms the auxiliary heads predict (feet_contact by cross-entropy, the rest by MSE)."""
    aux_weight: float = 1.0
    """Weight of the auxiliary losses."""
    imitation_weight: float = 1.0
    """Imitation (MSE to the teacher's action) weight at the start."""
    imitation_final_weight: float = 0.0
    """Imitation weight at the end of the anneal."""
    imitation_anneal_fraction: float = 0.5
    """Fraction of `run.total_steps` over which the imitation weight goes linearly start -> final."""
    aux_epochs: int = 1
    """Passes over each rollout of the auxiliary phase (imitation + aux losses) after PPO's update."""
    discriminator: DiscriminatorCfg = field(default_factory=DiscriminatorCfg)
    """The motion discriminator."""
    teacher_data: TeacherDataCfg = field(default_factory=TeacherDataCfg)
    """Teacher motion data recording."""
    network: StudentNetworkCfg = field(default_factory=StudentNetworkCfg)
    """Student network sizes."""
    task: TaskCfg = field(default_factory=TaskCfg)
    """The locomotion task (by default the teacher's)."""
    ppo: PPOCfg = field(default_factory=PPOCfg)
    """PPO hyperparameters (unused by 'distill')."""
    run: RunCfg = field(default_factory=RunCfg)
    """Run bookkeeping."""

    @property
    def uses_ppo(self) -> bool:
        """PPO's clipped surrogate and value losses are trained (all but 'distill')."""
        return self.method != "distill"

    @property
    def uses_gan(self) -> bool:
        """The style reward and discriminator are on."""
        return self.method == "tmp" and self.gan

    @property
    def uses_aux(self) -> bool:
        """The auxiliary heads are trained."""
        return self.method == "tmp" and self.aux

    @property
    def uses_imitation(self) -> bool:
        """The actor imitates the teacher's actions."""
        return self.method == "distill" or (self.method == "tmp" and self.imitation)

    @property
    def critic_group(self) -> str:
        """The critic's observation: privileged, except for the proprio-only PPO baseline."""
        return "proprio_history" if self.method == "ppo_proprio" else "privileged"


def student_task(cfg: StudentCfg) -> TaskCfg:
    """The task a student trains and runs on: its `task` whose proprio group keeps `history_len` frames."""
    return cfg.task.with_history("proprio", cfg.history_len)


def student_preset(teacher: TeacherCfg, teacher_run: str, method: str = "tmp") -> StudentCfg:
    """A student of `teacher`: the teacher's task (on this machine's default batch of envs).

    PPO and run settings are this project's defaults, not the teacher's: the teacher may have been
    trained on another machine (a GPU, more envs). 'distill' imitates with a constant weight and acts
    with little noise (its noise is not trained).
    """
    if method not in STUDENT_METHODS:
        raise ValueError(f"unknown student method {method!r}; choose from {', '.join(STUDENT_METHODS)}.")
    task = teacher.task.with_batch(128, nthread=0)
    cfg = StudentCfg(teacher=teacher_run, method=method, task=task)
    if method == "distill":
        cfg = dataclasses.replace(
            cfg, imitation_final_weight=cfg.imitation_weight,
            network=dataclasses.replace(cfg.network, init_noise_std=0.1),
        )  # fmt: skip
    return cfg


def to_dict(cfg: Any) -> Any:
    """A dataclass config as plain JSON-able data (tuples become lists, mappings dicts)."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, dict) or hasattr(cfg, "items"):
        return {str(k): to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, list | tuple):
        return [to_dict(v) for v in cfg]
    return cfg
