"""A training run on SB3's PPO: session (env, normaliser, model, checkpoint contract), monitoring, run dirs.

The env is `LocomotionVecEnv` (Dict observations) under SB3's `VecNormalize` (running observation
normalisation, saved in every checkpoint). `TrainingSession` as it stands is the teacher's (SB3's
`MultiInputPolicy` with a features extractor that reads the privileged group); the student's session
(`humanoid_prior.runners.student`) overrides how the env is wrapped, the model and the checkpoint payload.
Everything else is SB3's own loop: this module adds the callbacks that log task metrics, save
checkpoints, render videos and stop at a wall-clock limit, and `run_session` that drives a run.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import CSVOutputFormat, Logger, TensorBoardOutputFormat

from humanoid_prior.algorithms.ppo import PPO, AdaptiveLR
from humanoid_prior.algorithms.symmetry import Mirror
from humanoid_prior.config import PPOCfg, to_dict
from humanoid_prior.envs.locomotion import LocomotionEnv
from humanoid_prior.envs.sb3_vec_env import LocomotionVecEnv
from humanoid_prior.monitoring import WandbRun, rollout_frames, write_run_metadata, write_video
from humanoid_prior.normaliser import load_rms_state, rms_state, vec_normalize
from humanoid_prior.policies.actor_critic import policy_kwargs
from humanoid_prior.runs.checkpoint import (
    EVALUATED,
    checkpoint_path,
    load_checkpoint,
    policy_snapshot,
    prune_checkpoints,
    save_checkpoint,
)
from humanoid_prior.runs.run_dir import EVALS, TEACHER_KIND, set_aside_later_evaluations


def learning_rate_schedule(ppo: PPOCfg) -> Any:
    """SB3 learning-rate schedule: a function of the remaining progress (1 -> 0), or an `AdaptiveLR`."""
    if ppo.lr_schedule == "adaptive":
        return AdaptiveLR(ppo.learning_rate, ppo.desired_kl)
    if ppo.lr_schedule == "constant":
        return ppo.learning_rate
    if ppo.lr_schedule != "linear":
        raise ValueError(
            f"PPOCfg.lr_schedule must be 'adaptive', 'linear' or 'constant', got '{ppo.lr_schedule}'."
        )
    final = ppo.lr_final_fraction

    def schedule(progress_remaining: float) -> float:
        return ppo.learning_rate * (final + (1.0 - final) * progress_remaining)

    return schedule


class TrainingSession:
    """One teacher run: env, normaliser, PPO model and the state a checkpoint restores."""

    kind = TEACHER_KIND
    """The checkpoint kind this session writes and accepts."""

    def __init__(self, cfg: Any, run_dir: Path, resume_from: Path | None = None) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        if cfg.run.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(
                f"--run.device {cfg.run.device}: this torch ({torch.__version__}) sees no CUDA GPU; "
                "use --run.device cpu (or auto)."
            )
        self.env = LocomotionEnv(cfg.task, seed=cfg.run.seed, dr_curriculum=True)
        self.base_vec_env = LocomotionVecEnv(self.env)
        self.vec_env = self.wrap(self.base_vec_env)
        self.venv = vec_normalize(self.vec_env, self.normalised_keys())
        self.model = self.make_model()
        self.iteration = 0
        self.trained_seconds = 0.0
        self.trained_steps = 0
        """Env steps whose PPO update is done: what a checkpoint stores (a rollout stopped part-way, or
        collected but not yet trained on, is not counted and is collected again after a resume)."""
        if resume_from is not None:
            self.restore(resume_from)

    def wrap(self, vec_env: LocomotionVecEnv) -> Any:
        """The VecEnv the policy trains on (the teacher: the task's own)."""
        return vec_env

    def normalised_keys(self) -> list[str] | None:
        """Observation keys VecNormalize normalises (None: all)."""
        return None

    def make_model(self) -> PPO:
        """The PPO model over `self.venv`."""
        cfg, ppo = self.cfg, self.cfg.ppo
        return PPO(
            "MultiInputPolicy", self.venv, learning_rate=learning_rate_schedule(ppo), n_steps=ppo.n_steps,
            batch_size=ppo.batch_size, n_epochs=ppo.n_epochs, gamma=ppo.gamma, gae_lambda=ppo.gae_lambda,
            clip_range=ppo.clip_range, ent_coef=ppo.ent_coef, vf_coef=ppo.vf_coef,
            max_grad_norm=ppo.max_grad_norm, target_kl=ppo.target_kl,
            policy_kwargs=policy_kwargs(cfg.network), seed=cfg.run.seed, device=cfg.run.device, verbose=0,
            rollout_threads=cfg.run.rollout_threads,
            mirror=self.mirror(), update_precision=ppo.update_precision,
        )  # fmt: skip

    def mirror(self) -> Mirror | None:
        """The left-right mirror of this task's observations and actions, when symmetry is on."""
        if not self.cfg.ppo.symmetry:
            return None
        return Mirror.build(self.env.robot, self.env.observations.layouts, self.cfg.task.scan)

    @property
    def samples_per_iteration(self) -> int:
        """Env steps collected per PPO iteration."""
        return self.cfg.ppo.n_steps * self.env.num_envs

    def payload(self) -> dict[str, Any]:
        """Everything needed to continue this run exactly (the checkpoint contract)."""
        curriculum = self.env.curriculum
        return {
            "kind": self.kind,
            "robot": self.env.robot.name,
            "robot_description": to_dict(self.env.robot),
            "obs_sizes": dict(self.env.obs_sizes),
            # The policy's input and joint facts, so that export builds the manifest without an env.
            "obs_layouts": {
                group: [[t.name, t.stop - t.start] for t in terms]
                for group, terms in self.env.observations.layouts.items()
            },
            "joint_limits": self.env.robot_model.joint_range.tolist(),
            "action_dim": self.env.num_joints,
            "config": to_dict(self.cfg),
            "policy": self.model.policy.state_dict(),
            "optimizer": self.model.policy.optimizer.state_dict(),
            **rms_state(self.venv),
            "num_timesteps": int(self.trained_steps),
            "n_updates": int(self.model._n_updates),
            "learning_rate": self.model.adaptive_lr.value if self.model.adaptive_lr is not None else None,
            "iteration": self.iteration,
            "trained_seconds": self.trained_seconds,
            "env_rng": json.dumps(self.env.rng.bit_generator.state),
            "curriculum_levels": torch.as_tensor(curriculum.levels) if curriculum is not None else None,
            "torch_rng": torch.get_rng_state(),
            "python_rng": json.dumps(random.getstate()),
        }

    def restore(self, path: Path) -> None:
        """Load a checkpoint into this session (validated against this env)."""
        data = load_checkpoint(
            path,
            kind=self.kind,
            robot=self.env.robot.name,
            obs_sizes=self.env.obs_sizes,
            action_dim=self.env.num_joints,
        )
        self.load_state(data)

    def load_state(self, data: dict[str, Any]) -> None:
        """Put a validated checkpoint's contents back into this session."""
        self.model.policy.load_state_dict(data["policy"])
        self.model.policy.optimizer.load_state_dict(data["optimizer"])
        load_rms_state(self.venv, data)
        self.model.num_timesteps = self.trained_steps = int(data["num_timesteps"])
        self.env.env_steps = self.model.num_timesteps  # the randomisation curriculum continues from here
        self.model._n_updates = int(data["n_updates"])
        if self.model.adaptive_lr is not None and data.get("learning_rate") is not None:
            self.model.adaptive_lr.value = float(data["learning_rate"])
        self.iteration = int(data["iteration"])
        self.trained_seconds = float(data["trained_seconds"])
        self.env.rng.bit_generator.state = json.loads(data["env_rng"])
        self.base_vec_env.cancel_seed()  # SB3 seeded the env at construction; the checkpoint's state wins
        curriculum = self.env.curriculum
        if curriculum is not None and data["curriculum_levels"] is not None:
            everyone = np.arange(self.env.num_envs)
            curriculum.place(everyone, data["curriculum_levels"].numpy(), curriculum.types)
        torch.set_rng_state(data["torch_rng"])
        state = json.loads(data["python_rng"])
        random.setstate((state[0], tuple(state[1]), state[2]))

    def save(self) -> Path:
        """Atomic checkpoint of the current iteration; older ones beyond `keep_checkpoints` are deleted."""
        directory = self.run_dir / "checkpoints"
        path = save_checkpoint(checkpoint_path(directory, self.iteration), self.payload())
        prune_checkpoints(directory, self.cfg.run.keep_checkpoints)
        return path

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Deterministic actions for raw (unnormalised) observations of a LocomotionEnv."""
        normalised = self.venv.normalize_obs(obs)
        actions, _ = self.model.predict(normalised, deterministic=True)
        return np.asarray(actions)

    def fresh_policy(self) -> Any:
        """A fresh observations -> actions callable for an episode (videos, periodic evaluation)."""
        return self.act


class MonitorCallback(BaseCallback):
    """Task metrics, checkpoints, videos and the wall-clock limit, once per PPO iteration."""

    def __init__(self, session: TrainingSession, wandb_run: WandbRun | None) -> None:
        super().__init__()
        self.session = session
        self.wandb_run = wandb_run
        self._sums: dict[str, float] = defaultdict(float)
        self._counts: dict[str, int] = defaultdict(int)
        self._start = time.perf_counter()
        self._eval_seconds = 0.0
        self._base_seconds = session.trained_seconds
        self._video_env: LocomotionEnv | None = None
        every = session.cfg.run.eval_every_steps
        # The first multiple of `every` after the steps this (re)start begins with.
        self._next_eval = (session.trained_steps // every + 1) * every if every else 0
        self._rollout_pending = False
        self._collected = False
        self.stop_reason: str | None = None
        """Why training stopped before its step budget ('time limit', 'SIGTERM', ...), else None."""

    def request_stop(self, reason: str) -> None:
        """Stop at the next env step (from a signal handler: only sets a flag)."""
        self.stop_reason = reason

    def _on_step(self) -> bool:
        log = self.session.vec_env.last_log
        for key, value in log.items():
            self._sums[key] += value
            self._counts[key] += 1
        limit = self.session.cfg.run.time_limit_min
        if limit is not None and self._elapsed() >= 60.0 * limit and self.stop_reason is None:
            self.stop_reason = "time limit"
        return self.stop_reason is None

    def _elapsed(self) -> float:
        # Evaluations are not training: their time stays out of the run's clock (and its steps/s).
        return self._base_seconds + time.perf_counter() - self._start - self._eval_seconds

    def _on_rollout_end(self) -> None:
        s = self.session
        s.iteration += 1
        s.trained_seconds = self._elapsed()
        for key, total in self._sums.items():
            self.logger.record(f"env/{key}", total / self._counts[key])
        self._sums.clear()
        self._counts.clear()
        self.logger.record("time/trained_minutes", s.trained_seconds / 60.0)
        self.logger.record("time/iteration", s.iteration)
        self._rollout_pending = True  # SB3 updates on this rollout next

    def _on_rollout_start(self) -> None:
        """The previous rollout's update is done: checkpoint, video and evaluation see the new policy."""
        s = self.session
        s.trained_steps = int(self.num_timesteps)
        self._collected = True
        if not self._rollout_pending:
            return
        self._rollout_pending = False
        if s.iteration % s.cfg.run.checkpoint_every == 0:
            s.save()
        every = s.cfg.run.video_every
        if every and s.iteration % every == 0:
            self.record_video()
        self.maybe_evaluate()

    def finish(self) -> None:
        """After `learn`: when it ran to its budget, the last rollout was trained on too.

        That rollout is evaluated if an evaluation is due; the final checkpoint follows in `run_session`.
        """
        if self.stop_reason is None:
            # The model's count: this callback's own is only kept while `learn` runs (0 if it did not).
            self.session.trained_steps = int(self.session.model.num_timesteps)
            if self._rollout_pending:
                self.maybe_evaluate()
        if self._collected:  # a resume with nothing left to train adds no training time
            self.session.trained_seconds = self._elapsed()

    def maybe_evaluate(self) -> None:
        """Run the evaluation protocol each time `eval_every_steps` more env steps were taken.

        Logged under eval/* and appended to <run>/evals.jsonl, which a resumed run keeps up to the step it
        resumed from (`set_aside_later_evaluations`). On terrain the crossing test (20 s over 0.10 m
        stairs and 15° slopes) runs too, so a run shows when it met it.
        The evaluated policy is kept as a checkpoint of its own (`EVALUATED`, named in the row), out of
        reach of the pruning of the newest checkpoints: a long run's policy can get worse after the
        evaluation where it did best, and that one can then be evaluated again or exported.
        """
        s, every = self.session, self.session.cfg.run.eval_every_steps
        if not every:
            return
        if self.num_timesteps < self._next_eval:
            return
        from humanoid_prior.evaluation import crossing, crossing_summary, evaluate, protocol

        self._next_eval = (self.num_timesteps // every + 1) * every
        start = time.perf_counter()
        cfg = protocol(s.cfg.task.terrain_name)
        policy = s.fresh_policy()  # a student acts on its own history, which `act` does not keep
        summary = evaluate(s.cfg.task, policy, cfg)["summary"]
        cells = crossing(s.cfg.task, policy) if s.cfg.task.terrain is not None else {}
        self._eval_seconds += time.perf_counter() - start
        row = {"env_steps": int(self.num_timesteps), "minutes": round(s.trained_seconds / 60.0, 2),
               "eval_repeats": cfg.repeats, "eval_seed": cfg.seed, **summary}  # fmt: skip
        kept_path = checkpoint_path(s.run_dir / EVALUATED, s.iteration)
        kept = save_checkpoint(kept_path, policy_snapshot(s.payload()))
        row["checkpoint"] = str(kept.relative_to(s.run_dir))
        if cells:
            row["crossing"] = crossing_summary(cells)
            for name, c in cells.items():
                self.logger.record(f"eval/crossing/{name}/fall_rate", c["fall_rate"])
                self.logger.record(f"eval/crossing/{name}/distance_m", c["distance_m"])
        with (s.run_dir / EVALS).open("a") as f:
            f.write(json.dumps(row) + "\n")
        for key, value in summary.items():
            self.logger.record(f"eval/{key}", value)

    def record_video(self) -> Path:
        """Render env 0 of a one-env copy of the task under the current policy; log it to W&B."""
        s = self.session
        if self._video_env is None:
            self._video_env = LocomotionEnv(s.cfg.task.with_batch(1, nthread=1), seed=s.cfg.run.seed + 1)
        frames = rollout_frames(self._video_env, s.fresh_policy(), s.cfg.run.video_seconds)
        fps = round(1.0 / self._video_env.dt)
        path = write_video(frames, s.run_dir / "videos" / f"iter_{s.iteration:07d}.mp4", fps)
        if self.wandb_run is not None:
            self.wandb_run.log_video(path, fps, step=self.num_timesteps)
        return path

    def _on_training_end(self) -> None:
        if self._video_env is not None:
            self._video_env.close()


def run_logger(run_dir: Path) -> Logger:
    """SB3 logger writing TensorBoard events and a CSV per (re)start of the run.

    SB3's CSV writer truncates its file when opened, so a resumed run writes `progress_<k>.csv` for
    its k-th start instead of overwriting the earlier starts' `progress_0.csv`.
    """
    starts = len(list(run_dir.glob("progress_*.csv")))
    formats = [
        CSVOutputFormat(str(run_dir / f"progress_{starts}.csv")),
        TensorBoardOutputFormat(str(run_dir)),
    ]
    return Logger(str(run_dir), formats)


def seed_everything(seed: int) -> None:
    """Seed torch and Python's `random` (numpy streams are seeded by the env and SB3)."""
    torch.manual_seed(seed)
    random.seed(seed)


def run_session(session: TrainingSession, resumed: bool, use_wandb: bool) -> Path:
    """Train a session to its step or time budget with monitoring, then checkpoint; returns the run dir."""
    cfg, run_dir = session.cfg, session.run_dir
    write_run_metadata(run_dir, to_dict(cfg))
    if resumed:
        set_aside_later_evaluations(run_dir, session.trained_steps)
    session.model.set_logger(run_logger(run_dir))
    wandb_run = (
        WandbRun(run_dir, cfg.run.wandb_project, run_dir.name, to_dict(cfg), resumed) if use_wandb else None
    )
    callback = MonitorCallback(session, wandb_run)
    remaining = max(0, cfg.run.total_steps - session.model.num_timesteps)
    handlers = _stop_on_signals(callback)
    try:
        if remaining:
            session.model.learn(
                remaining, callback=callback, reset_num_timesteps=False, progress_bar=cfg.run.progress_bar
            )
        callback.finish()
        path = session.save()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        session.env.close()
        if wandb_run is not None:
            wandb_run.finish()
    if callback.stop_reason in _SIGNALS.values():
        raise SystemExit(
            f"stopped by {callback.stop_reason} at {session.trained_steps:,} env steps; checkpoint {path} "
            f"saved; continue with --resume {run_dir}"
        )
    return run_dir


_SIGNALS = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT"}


def _stop_on_signals(callback: MonitorCallback) -> dict[signal.Signals, Any]:
    """SIGTERM / SIGINT end the run at the next env step with a final checkpoint; returns the old handlers.

    A second signal while stopping is left to the old handler (Ctrl-C twice still interrupts at once).
    """
    previous: dict[signal.Signals, Any] = {}

    def handle(signum: int, frame: Any) -> None:
        sig = signal.Signals(signum)
        callback.request_stop(_SIGNALS[sig])
        signal.signal(sig, previous[sig])

    for sig in _SIGNALS:
        with contextlib.suppress(ValueError):  # not the main thread: signals cannot be caught there
            previous[sig] = signal.signal(sig, handle)
    return previous
