"""Train the student: SB3 PPO extended with the teacher motion prior (TMP) and its baselines.

`StudentPPO` is SB3's PPO (our thread-aware subclass) plus two steps after each PPO update:

1. an auxiliary phase over the same rollout: imitation of the teacher's action (MSE on the mean
   action, annealed weight) and the auxiliary heads' losses (MSE / binary cross-entropy) on the
   actor's shared hidden features, with the policy's own optimiser;
2. discriminator steps: least-squares GAN, teacher transitions "real", the rollout's "fake", with a
   gradient penalty on real samples and its own optimiser.

The style reward enters through `StudentVecEnv` while the rollout is collected, so SB3's GAE sees it
as part of the reward (time-outs bootstrapped as usual). SB3's `PPO.train` is one function; adding
losses inside it would mean copying it, so the extra losses run as their own phase after it (as in
phasic policy gradient) and SB3 stays untouched. Switches give the ablations and the baselines
('distill': no PPO loss, imitation only; 'ppo_proprio': PPO only, critic on the proprio history).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from humanoid_prior.algorithms.ppo import PPO
from humanoid_prior.config import StudentCfg, TeacherCfg, student_task
from humanoid_prior.envs.sb3_vec_env import LocomotionVecEnv
from humanoid_prior.policies.discriminator import MotionDiscriminator, gradient_penalty, lsgan_loss
from humanoid_prior.policies.student_policy import StudentPolicy
from humanoid_prior.runners.student_env import StudentVecEnv
from humanoid_prior.runners.teacher_data import load_or_record
from humanoid_prior.runners.training import (
    TrainingSession,
    learning_rate_schedule,
    run_session,
    seed_everything,
)
from humanoid_prior.runs.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from humanoid_prior.runs.policy_io import load_policy
from humanoid_prior.runs.run_dir import (
    STUDENT_KIND,
    TEACHER_KIND,
    load_run_config,
    new_run_dir,
    pin_robot,
    resume_point,
)


class StudentPPO(PPO):
    """PPO + auxiliary phase (imitation, auxiliary heads) + motion-discriminator training."""

    policy: StudentPolicy

    def __init__(self, *args: Any, student: StudentCfg, student_env: StudentVecEnv,
                 discriminator: MotionDiscriminator | None, real_pairs: torch.Tensor | None,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(*args, **kwargs)
        self.student = student
        self.student_env = student_env
        self.discriminator = discriminator
        self.real_pairs = real_pairs
        self.disc_optimizer = (
            torch.optim.Adam(
                discriminator.parameters(),
                lr=student.discriminator.learning_rate,
                weight_decay=student.discriminator.weight_decay,
            )
            if discriminator is not None
            else None
        )

    def imitation_weight(self) -> float:
        """Linear anneal from `imitation_weight` to `imitation_final_weight` over the anneal fraction."""
        s = self.student
        done = 1.0 - self._current_progress_remaining
        t = min(1.0, done / s.imitation_anneal_fraction) if s.imitation_anneal_fraction > 0 else 1.0
        return s.imitation_weight + t * (s.imitation_final_weight - s.imitation_weight)

    def train(self) -> None:
        """PPO's update (unless distilling), then the auxiliary phase, then the discriminator."""
        if self.student.uses_ppo:
            super().train()
        else:
            self._update_learning_rate(self.policy.optimizer)
        if self.student.uses_imitation or self.student.uses_aux:
            self.auxiliary_phase()
        if self.discriminator is not None:
            self.train_discriminator()

    def auxiliary_phase(self) -> None:
        """Imitation and auxiliary losses over the rollout, `aux_epochs` passes of PPO's minibatches."""
        s = self.student
        w_imit = self.imitation_weight() if s.uses_imitation else 0.0
        logs: dict[str, list[float]] = {}
        self.policy.set_training_mode(True)
        for _ in range(s.aux_epochs):
            for batch in self.rollout_buffer.get(self.batch_size):
                obs = batch.observations
                assert isinstance(obs, dict)
                mean, aux_pred = self.policy.actor_outputs(obs)
                loss = torch.zeros((), device=self.device)
                if w_imit > 0:
                    imitation = F.mse_loss(mean, obs["teacher_action"])
                    loss = loss + w_imit * imitation
                    logs.setdefault("student/imitation_loss", []).append(imitation.item())
                if s.uses_aux and aux_pred is not None:
                    aux_loss, aux_logs = self.aux_losses(aux_pred, obs["aux_target"])
                    loss = loss + s.aux_weight * aux_loss
                    for key, value in aux_logs.items():
                        logs.setdefault(key, []).append(value)
                if loss.requires_grad:
                    self.policy.optimizer.zero_grad()
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                    self.policy.optimizer.step()
        for key, values in logs.items():
            self.logger.record(key, float(np.mean(values)))
        self.logger.record("student/imitation_weight", w_imit)

    def aux_losses(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Sum of per-term losses; logs each loss and its error in physical units (accuracy for states)."""
        total = torch.zeros((), device=pred.device)
        logs: dict[str, float] = {}
        for term in self.student_env.aux:
            p, t = pred[:, term.start : term.stop], target[:, term.start : term.stop]
            if term.binary:
                loss = F.binary_cross_entropy_with_logits(p, t)
                logs[f"aux/{term.name}_accuracy"] = ((p > 0).float() == t).float().mean().item()
            else:
                loss = F.mse_loss(p, t)
                logs[f"aux/{term.name}_mean_abs_error"] = (p - t).abs().mean().item()
            logs[f"aux/{term.name}_loss"] = loss.item()
            total = total + loss
        return total, logs

    def train_discriminator(self) -> None:
        """LSGAN steps: teacher pairs -> +1, this rollout's pairs -> -1, gradient penalty on real."""
        assert self.discriminator is not None and self.disc_optimizer is not None
        assert self.real_pairs is not None
        fake_all = torch.from_numpy(self.student_env.take_fake_pairs())
        if not len(fake_all):
            return
        cfg = self.student.discriminator
        disc, logs = self.discriminator, {}
        for _ in range(cfg.steps_per_iteration):
            real = self.real_pairs[torch.randint(len(self.real_pairs), (cfg.batch_size,))]
            fake = fake_all[torch.randint(len(fake_all), (cfg.batch_size,))]
            d_real, d_fake = disc(real), disc(fake)
            gan = lsgan_loss(d_real, d_fake)
            penalty = gradient_penalty(disc, real)
            self.disc_optimizer.zero_grad()
            (gan + cfg.gradient_penalty * penalty).backward()
            self.disc_optimizer.step()
            logs = {
                "disc/loss": gan.item(),
                "disc/grad_penalty": penalty.item(),
                "disc/real_accuracy": (d_real > 0).float().mean().item(),
                "disc/fake_accuracy": (d_fake < 0).float().mean().item(),
                "disc/d_real": d_real.mean().item(),
                "disc/d_fake": d_fake.mean().item(),
            }
        for key, value in logs.items():
            self.logger.record(key, value)


class StudentSession(TrainingSession):
    """A student run: the teacher's task seen through `StudentVecEnv`, trained by `StudentPPO`."""

    kind = STUDENT_KIND

    def __init__(self, cfg: StudentCfg, run_dir: Path, resume_from: Path | None = None) -> None:
        self.teacher = load_teacher(cfg) if (cfg.uses_imitation or cfg.uses_gan) else None
        self.discriminator: MotionDiscriminator | None = None
        self.real_pairs: torch.Tensor | None = None
        if cfg.uses_gan:
            data = load_or_record(Path(cfg.teacher), cfg.teacher_data)
            self.real_pairs = torch.from_numpy(data.pairs)
            self.discriminator = MotionDiscriminator(data.feature_dim, cfg.discriminator.hidden)
            self.discriminator.fit_normaliser(self.real_pairs)
        super().__init__(dataclasses.replace(cfg, task=student_task(cfg)), run_dir, resume_from)

    def wrap(self, vec_env: LocomotionVecEnv) -> StudentVecEnv:
        """History, labels and style reward over the task."""
        cfg: StudentCfg = self.cfg
        return StudentVecEnv(
            vec_env, teacher=self.teacher if cfg.uses_imitation else None,
            aux_terms=cfg.aux_terms if cfg.uses_aux else (), discriminator=self.discriminator,
            task_weight=cfg.task_weight, style_weight=cfg.style_weight if cfg.uses_gan else 0.0,
        )  # fmt: skip

    def normalised_keys(self) -> list[str] | None:
        """The student's inputs; never the labels."""
        return ["proprio_history", "privileged"]

    def make_model(self) -> StudentPPO:
        """StudentPPO with the student policy."""
        cfg: StudentCfg = self.cfg
        ppo, net = cfg.ppo, cfg.network
        return StudentPPO(
            StudentPolicy, self.venv, learning_rate=learning_rate_schedule(ppo), n_steps=ppo.n_steps,
            batch_size=ppo.batch_size, n_epochs=ppo.n_epochs, gamma=ppo.gamma, gae_lambda=ppo.gae_lambda,
            clip_range=ppo.clip_range, ent_coef=ppo.ent_coef, vf_coef=ppo.vf_coef,
            max_grad_norm=ppo.max_grad_norm, target_kl=ppo.target_kl, seed=cfg.run.seed,
            device=cfg.run.device, verbose=0, rollout_threads=cfg.run.rollout_threads,
            policy_kwargs={"actor_hidden": net.actor_hidden, "critic_hidden": net.critic_hidden,
                           "aux_dim": self.vec_env.aux_dim, "critic_group": cfg.critic_group,
                           "init_noise_std": net.init_noise_std},
            student=cfg, student_env=self.vec_env, discriminator=self.discriminator,
            real_pairs=self.real_pairs,
        )  # fmt: skip

    def payload(self) -> dict[str, Any]:
        """The teacher session's payload plus history length, discriminator and its optimiser."""
        data = super().payload()
        model: StudentPPO = self.model  # type: ignore[assignment]
        data["history_len"] = self.cfg.history_len
        data["discriminator"] = self.discriminator.state_dict() if self.discriminator is not None else None
        data["disc_optimizer"] = (
            model.disc_optimizer.state_dict() if model.disc_optimizer is not None else None
        )
        return data

    def load_state(self, data: dict[str, Any]) -> None:
        """Restore as the teacher session does, plus the discriminator."""
        super().load_state(data)
        model: StudentPPO = self.model  # type: ignore[assignment]
        if self.discriminator is not None and model.disc_optimizer is not None:
            if data.get("discriminator") is None:
                raise CheckpointError("the checkpoint has no discriminator, but this run uses one.")
            self.discriminator.load_state_dict(data["discriminator"])
            model.disc_optimizer.load_state_dict(data["disc_optimizer"])

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Not available: a student needs its history (see `fresh_policy`)."""
        raise TypeError("a student acts on its history: use fresh_policy() for a fresh stateful policy.")

    def fresh_policy(self) -> Any:
        """Observations of the student's env (with its proprio history) -> deterministic actions."""

        def act(obs: dict[str, np.ndarray]) -> np.ndarray:
            student_obs = {"proprio_history": obs["proprio_history"], "privileged": obs["privileged"]}
            normalised = self.venv.normalize_obs(student_obs)
            assert isinstance(normalised, dict)
            policy: StudentPolicy = self.model.policy  # type: ignore[assignment]
            with torch.no_grad():
                tensors = {k: torch.as_tensor(v, device=self.model.device) for k, v in normalised.items()}
                mean, _ = policy.actor_outputs(tensors)
            return mean.cpu().numpy()

        return act


def load_teacher(cfg: StudentCfg) -> Any:
    """The teacher policy of a student config, with one clear error when it is missing or unusable."""
    if not cfg.teacher:
        raise ValueError(f"the '{cfg.method}' student needs a teacher: pass --teacher runs/<teacher run>.")
    teacher_config(Path(cfg.teacher))
    teacher = load_policy(Path(cfg.teacher))
    if teacher.cfg.task.robot != cfg.task.robot:
        raise ValueError(
            f"teacher {cfg.teacher} was trained for '{teacher.cfg.task.robot}', the student is for "
            f"'{cfg.task.robot}'."
        )
    return teacher


def teacher_config(teacher_run: Path) -> TeacherCfg:
    """The teacher run's config, with a clear error if it is not a trained teacher run."""
    if not (teacher_run / "config.json").is_file():
        raise FileNotFoundError(
            f"teacher run {teacher_run} has no config.json; is it a teacher run directory?"
        )
    kind = load_checkpoint(latest_checkpoint(teacher_run / "checkpoints")).get("kind")
    if kind != TEACHER_KIND:
        raise ValueError(
            f"{teacher_run} holds a '{kind}' run, not a teacher; pass a run of `train.py teacher`."
        )
    return load_run_config(teacher_run)


def train_student(cfg: StudentCfg, resume: Path | None = None, use_wandb: bool = True) -> Path:
    """Train (or continue, with `resume` = a run directory) a student; returns the run directory."""
    if resume is not None:
        run_dir = resume
        cfg = load_run_config(run_dir, StudentCfg)
        start_from = resume_point(run_dir)
    else:
        run_dir = new_run_dir(cfg, f"{cfg.method}_{STUDENT_KIND}")
        cfg = pin_robot(cfg, run_dir)
        start_from = None
    seed_everything(cfg.run.seed)
    session = StudentSession(cfg, run_dir, resume_from=start_from)
    return run_session(session, resumed=resume is not None, use_wandb=use_wandb)
