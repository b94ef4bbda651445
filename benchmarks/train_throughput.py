"""PPO's end-to-end training throughput against the env alone, same config, measured in one run.

    python benchmarks/train_throughput.py --preset g1_flat --json out.json

Each round times `--iterations` PPO iterations (rollout collection + update, from the first rollout's
start to the end of the last update) and then the same number of env steps driven by random actions
through the same vectorised env stack (LocomotionVecEnv + VecNormalize) with no policy and no update.
Rounds interleave so that noise on a shared machine hits both sides alike; the reported ratio is the
median of the per-round ratios. Target: `ratio` = train_steps_per_s / env_steps_per_s >= 0.62. Each
round also splits a PPO iteration into the env's own time, what collecting adds to it (policy forward
passes, SB3's rollout buffer) and the update. Last, the update's network compute alone is timed per
minibatch (SB3's `evaluate_actions`, PPO-shaped loss, backward, gradient clip, Adam; random inputs) with
the hidden layers in float32 and in bfloat16 (`--ppo.update-precision`), with the ratio each would allow
if collecting cost nothing beyond the env (`ratio_ceiling`). `--set ppo.update_precision=bfloat16`
measures the bfloat16 update end to end.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

from humanoid_prior.algorithms.ppo import trunk_precision
from humanoid_prior.config import named_teacher_preset, to_dict
from humanoid_prior.config_io import with_overrides
from humanoid_prior.monitoring import machine
from humanoid_prior.runners.training import TrainingSession


class IterationClock(BaseCallback):
    """Wall-clock from the first rollout's start to the end of training, and the part spent collecting.

    Setup and the env's first reset are excluded; what is not collection is PPO's update.
    """

    def __init__(self) -> None:
        super().__init__()
        self.started: float | None = None
        self.ended = 0.0
        self.rollout_started = 0.0
        self.collecting = 0.0

    def _on_rollout_start(self) -> None:
        self.rollout_started = time.perf_counter()
        if self.started is None:
            self.started = self.rollout_started

    def _on_rollout_end(self) -> None:
        self.collecting += time.perf_counter() - self.rollout_started

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        self.ended = time.perf_counter()


SPLIT = ("iteration_ms", "env_ms", "collect_overhead_ms", "update_ms")
"""A PPO iteration split: the env alone + what collecting adds + the update = the iteration (per round;
medians over rounds need not add up). The collection overhead is an estimate: the collection's time less
that of the env stepped with random actions, a workload that resets and falls differently."""


def train_steps_per_s(session: TrainingSession, iterations: int) -> tuple[float, float]:
    """PPO's end-to-end env steps per second, and the share of its time spent collecting rollouts."""
    clock = IterationClock()
    steps = iterations * session.samples_per_iteration
    session.model.learn(steps, callback=clock, reset_num_timesteps=False)
    assert clock.started is not None
    elapsed = clock.ended - clock.started
    return steps / elapsed, clock.collecting / elapsed


def env_steps_per_s(session: TrainingSession, iterations: int, rng: np.random.Generator) -> float:
    venv = session.venv
    num_envs = session.env.num_envs
    control_steps = iterations * session.cfg.ppo.n_steps
    actions = np.clip(rng.normal(0.0, 0.5, size=(control_steps, num_envs, session.env.num_joints)), -1, 1)
    venv.reset()
    start = time.perf_counter()
    for a in actions:
        venv.step(a)
    return control_steps * num_envs / (time.perf_counter() - start)


def minibatch_step_ms(session: TrainingSession, batch: int, precision: str, reps: int) -> float:
    """Median wall-clock of one PPO minibatch step of `batch` samples (ms)."""
    policy = session.model.policy
    rng = np.random.default_rng(0)
    obs = {
        key: torch.as_tensor(rng.normal(size=(batch, size)), dtype=torch.float32)
        for key, size in session.env.obs_sizes.items()
    }
    actions = torch.as_tensor(rng.normal(0.0, 0.5, size=(batch, session.env.num_joints)), dtype=torch.float32)
    returns = torch.zeros(batch)
    params = list(policy.parameters())
    state = {k: v.clone() for k, v in policy.state_dict().items()}
    optimizer_state = copy.deepcopy(policy.optimizer.state_dict())  # Adam updates its state in place

    def step() -> None:
        with trunk_precision(policy, precision):
            values, log_prob, entropy = policy.evaluate_actions(obs, actions)
        assert entropy is not None
        ratio = torch.exp(log_prob - log_prob.detach())
        loss = -ratio.mean() + ((returns - values.flatten()) ** 2).mean() - 0.005 * entropy.mean()
        policy.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        policy.optimizer.step()

    for _ in range(3):
        step()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    policy.load_state_dict(state)  # leave the model as it was
    policy.optimizer.load_state_dict(optimizer_state)
    return 1e3 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="g1_flat", help="g1_flat, g1_rough or <robot>_<terrain>")
    parser.add_argument("--num-envs", type=int, default=None, help="override the preset's env count")
    parser.add_argument("--iterations", type=int, default=10, help="PPO iterations per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved train/env rounds")
    parser.add_argument("--hidden", default=None, help="actor and critic widths, e.g. 512,256,128")
    parser.add_argument("--batch-size", type=int, default=None, help="PPO minibatch size")
    parser.add_argument("--rollout-threads", type=int, default=None, help="torch threads while collecting")
    parser.add_argument(
        "--adam", choices=("fused", "for-loop"), default="fused",
        help="Adam implementation (the product uses fused; for-loop: torch's default on CPU)",
    )  # fmt: skip
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="dotted.path=value")
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    args = parser.parse_args()

    cfg = with_overrides(named_teacher_preset(args.preset), args.overrides)
    if args.num_envs is not None:
        cfg = dataclasses.replace(cfg, task=cfg.task.with_batch(args.num_envs))
    if args.hidden is not None:
        widths = tuple(int(w) for w in args.hidden.split(","))
        cfg = dataclasses.replace(cfg, network=dataclasses.replace(cfg.network, actor_hidden=widths,
                                                                   critic_hidden=widths))  # fmt: skip
    if args.batch_size is not None:
        cfg = dataclasses.replace(cfg, ppo=dataclasses.replace(cfg.ppo, batch_size=args.batch_size))
    run = dataclasses.replace(cfg.run, progress_bar=False, video_every=0)
    if args.rollout_threads is not None:
        run = dataclasses.replace(run, rollout_threads=args.rollout_threads)
    cfg = dataclasses.replace(cfg, run=run)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        session = TrainingSession(cfg, Path(tmp))
        if args.adam == "for-loop":
            policy = session.model.policy
            policy.optimizer = torch.optim.Adam(
                policy.parameters(), lr=policy.optimizer.param_groups[0]["lr"], eps=1e-5, foreach=False
            )
        train_steps_per_s(session, 2)  # warm-up: allocations, first resets, torch kernels
        rounds = []
        for _ in range(args.rounds):
            train, collect_share = train_steps_per_s(session, args.iterations)
            env = env_steps_per_s(session, args.iterations, rng)
            # Per iteration: the env alone, what collecting adds to it (policy forward passes, SB3's buffer),
            # and the update; their sum is the iteration, so a reader sees which part keeps the ratio down.
            iteration_ms = 1e3 * session.samples_per_iteration / train
            env_ms = 1e3 * session.samples_per_iteration / env
            rounds.append({
                "train_steps_per_s": train, "env_steps_per_s": env, "ratio": train / env,
                "iteration_ms": iteration_ms, "env_ms": env_ms,
                "collect_overhead_ms": collect_share * iteration_ms - env_ms,
                "update_ms": (1.0 - collect_share) * iteration_ms,
            })  # fmt: skip
            split = rounds[-1]
            print(f"train {train:8.0f} steps/s   env {env:8.0f} steps/s   ratio {train / env:.3f}   "
                  f"per iteration: env {env_ms:.0f} ms + collection overhead "
                  f"{split['collect_overhead_ms']:.0f} ms + update {split['update_ms']:.0f} ms")  # fmt: skip
        # The update's network compute alone (SB3's evaluate_actions, loss, backward, clip, Adam) per
        # minibatch, with the hidden layers in float32 and in bfloat16 (`--ppo.update-precision`).
        ppo = cfg.ppo
        batch = ppo.batch_size * (2 if ppo.symmetry else 1)  # mirror augmentation doubles each minibatch
        steps_per_update = ppo.n_epochs * (session.samples_per_iteration // ppo.batch_size)
        env_ms = float(np.median([r["env_ms"] for r in rounds]))
        compute = {}
        for name in ("float32", "bfloat16"):
            step_ms = minibatch_step_ms(session, batch, name, reps=20)
            update_ms = step_ms * steps_per_update
            compute[name] = {
                "minibatch_step_ms": step_ms,
                "update_ms": update_ms,
                # the train/env ratio this update allows if collection cost nothing beyond the env
                "ratio_ceiling": env_ms / (env_ms + update_ms),
            }
        session.env.close()
    result = {
        "train_steps_per_s": float(np.median([r["train_steps_per_s"] for r in rounds])),
        "env_steps_per_s": float(np.median([r["env_steps_per_s"] for r in rounds])),
        "ratio": float(np.median([r["ratio"] for r in rounds])),
        **{key: float(np.median([r[key] for r in rounds])) for key in SPLIT},
        "update_compute": {"minibatch": batch, "steps_per_update": steps_per_update, **compute},
        "rounds": rounds,
        "preset": args.preset,
        "num_envs": cfg.task.sim.num_envs,
        "samples_per_iteration": cfg.ppo.n_steps * cfg.task.sim.num_envs,
        "ppo": to_dict(cfg.ppo),
        "network": to_dict(cfg.network),
        "rollout_threads": cfg.run.rollout_threads,
        "adam": args.adam,
        "update_precision": cfg.ppo.update_precision,
        "command": "python " + shlex.join(["benchmarks/train_throughput.py", *sys.argv[1:]]),
        "machine": machine(),
    }
    headline = ("train_steps_per_s", "env_steps_per_s", "ratio", "update_compute")
    print(json.dumps({k: result[k] for k in headline}))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
