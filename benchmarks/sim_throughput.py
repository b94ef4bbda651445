"""Batched-simulator throughput against the physical limit and against a hand-written peer set-up.

Measures, in one run on one machine (policy steps per second, medians over repeats):
  raw   plain `mj_step` over the same compiled model, batch, substeps and threads (Python threads,
        each stepping its share of MjData; mj_step releases the GIL) — nothing but physics;
  sim   `BatchedSim.step` (mujoco.rollout pool), including divergence checks and state read-back,
        plus reading every named state array the task uses;
  env   the full locomotion task step (`LocomotionEnv.step`: latency buffer, DR pushes, TaskState,
        terminations, rewards, commands, resets with curriculum and DR, observations) on the
        `--task` preset with default-pose actions; `env_sim` is the rate of the simulator calls inside
        those same env steps (time spent in `BatchedSim.step` only), so `task_overhead = 1 - env/env_sim`
        is the share of the task's own work, on identical physics;
  peer  one gymnasium env per process (one MjData, PD torques computed in Python each substep)
        under stable-baselines3's SubprocVecEnv with 2 processes — what a user would write by hand.
Every repeat starts from the default pose and lasts `--horizon` policy steps, so all three step
the same physics (standing, then starting to tip). Prints the JSON as its last line.

    python benchmarks/sim_throughput.py --robot g1 --num-envs 64 --json out.json
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from stable_baselines3.common.vec_env import SubprocVecEnv

from humanoid_prior.envs.batched_sim import BatchedSim, SimCfg
from humanoid_prior.envs.locomotion import LocomotionEnv
from humanoid_prior.envs.model_builder import RobotModel, build_model
from humanoid_prior.envs.presets import TERRAIN_PRESETS
from humanoid_prior.envs.robots import get_robot
from humanoid_prior.envs.task_cfg import task_preset
from humanoid_prior.monitoring import machine, report


def raw_steps_per_s(rm: RobotModel, num_envs: int, decimation: int, nthread: int, horizon: int) -> float:
    model = rm.model
    datas = [mujoco.MjData(model) for _ in range(num_envs)]
    qpos0 = rm.default_qpos()
    ctrl = np.asarray(rm.robot.default_joint_pos)
    for d in datas:
        d.qpos[:] = qpos0
        d.ctrl[:] = ctrl
    shards = [datas[i::nthread] for i in range(nthread)]

    def work(shard: list[mujoco.MjData]) -> None:
        for _ in range(horizon):
            for d in shard:
                mujoco.mj_step(model, d, nstep=decimation)

    threads = [threading.Thread(target=work, args=(s,)) for s in shards]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return num_envs * horizon / (time.perf_counter() - start)


def env_steps_per_s(env: LocomotionEnv, horizon: int) -> tuple[float, float]:
    """(env steps/s, steps/s of the simulator calls inside them)."""
    env.reset()
    actions = np.zeros((env.num_envs, env.num_joints))  # default-pose targets, as in sim_steps_per_s
    in_sim = 0.0
    sim_step = env.sim.step

    def timed_step(joint_targets: np.ndarray) -> np.ndarray:
        nonlocal in_sim
        t0 = time.perf_counter()
        result = sim_step(joint_targets)
        in_sim += time.perf_counter() - t0
        return result

    env.sim.step = timed_step  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        for _ in range(horizon):
            env.step(actions)
        elapsed = time.perf_counter() - start
    finally:
        del env.sim.step  # back to the class method
    steps = env.num_envs * horizon
    return steps / elapsed, steps / in_sim


def sim_steps_per_s(sim: BatchedSim, horizon: int) -> float:
    rm = sim.robot_model
    ids = np.arange(sim.num_envs)
    sim.reset(ids, np.tile(rm.default_qpos(), (sim.num_envs, 1)))
    targets = np.tile(np.asarray(rm.robot.default_joint_pos), (sim.num_envs, 1))
    start = time.perf_counter()
    for _ in range(horizon):
        sim.step(targets)
        # What the task reads every step.
        _ = (sim.base_pos, sim.base_quat, sim.base_lin_vel, sim.base_ang_vel, sim.projected_gravity,
             sim.joint_pos, sim.joint_vel, sim.feet_contact_force, sim.feet_pos, sim.feet_vel)  # fmt: skip
    return sim.num_envs * horizon / (time.perf_counter() - start)


class PeerPDEnv(gym.Env):
    """The single-env set-up users write by hand: one MjData, PD torques in Python each substep."""

    def __init__(self, robot: str, decimation: int) -> None:
        self.rm = build_model(get_robot(robot))
        model = self.rm.model
        # Turn the builder's PD servos into plain torque motors: the PD runs in Python below.
        model.actuator_gainprm[:, 0] = 1.0
        model.actuator_biasprm[:, :3] = 0.0
        self.data = mujoco.MjData(model)
        r = self.rm.robot
        self.kp, self.kd = np.asarray(r.kp), np.asarray(r.kd)
        self.limit, self.default = np.asarray(r.torque_limits), np.asarray(r.default_joint_pos)
        self.decimation = decimation
        n = self.rm.num_joints
        self.action_space = gym.spaces.Box(-1.0, 1.0, (n,), np.float32)
        obs_dim = 3 + 4 + 2 * n
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)

    def _obs(self) -> np.ndarray:
        d, rm = self.data, self.rm
        return np.concatenate([d.qpos[:7], d.qpos[rm.joint_qpos_adr], d.qvel[rm.joint_dof_adr]]).astype(
            np.float32
        )

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        mujoco.mj_resetData(self.rm.model, self.data)
        self.data.qpos[:] = self.rm.default_qpos()
        mujoco.mj_forward(self.rm.model, self.data)
        return self._obs(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        d, rm = self.data, self.rm
        target = self.default + 0.25 * np.asarray(action, dtype=np.float64)
        for _ in range(self.decimation):
            q, qd = d.qpos[rm.joint_qpos_adr], d.qvel[rm.joint_dof_adr]
            d.ctrl[:] = np.clip(self.kp * (target - q) - self.kd * qd, -self.limit, self.limit)
            mujoco.mj_step(rm.model, d)
        return self._obs(), 0.0, False, False, {}


def peer_steps_per_s(venv: SubprocVecEnv, horizon: int, rounds: int = 4) -> float:
    """Several short rounds from a reset (2 envs finish a horizon quickly; one round is too short to time)."""
    actions = np.zeros((venv.num_envs, venv.action_space.shape[0]), dtype=np.float32)  # type: ignore[index]
    elapsed = 0.0
    for _ in range(rounds):
        venv.reset()
        start = time.perf_counter()
        for _ in range(horizon):
            venv.step(actions)
        elapsed += time.perf_counter() - start
    return venv.num_envs * horizon * rounds / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--robot", default="g1")
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--decimation", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--horizon", type=int, default=100, help="policy steps per repeat (from the default pose)"
    )
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--peer-procs", type=int, default=2)
    parser.add_argument("--task", default="rough", choices=TERRAIN_PRESETS, help="terrain preset of the env")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    rm = build_model(get_robot(args.robot))
    raws, sims = [], []
    sim_cfg = SimCfg(num_envs=args.num_envs, decimation=args.decimation, nthread=args.threads)
    with BatchedSim(rm, sim_cfg) as sim:
        # Interleave raw and sim so that noise on this shared machine hits both alike; the first
        # round warms caches and thread pools and is dropped.
        for _ in range(args.repeats + 1):
            raws.append(raw_steps_per_s(rm, args.num_envs, args.decimation, args.threads, args.horizon))
            sims.append(sim_steps_per_s(sim, args.horizon))
    raws, sims = raws[1:], sims[1:]
    envs, env_sims = [], []
    env = LocomotionEnv(task_preset(args.robot, args.task, num_envs=args.num_envs))
    for _ in range(args.repeats + 1):
        env_rate, sim_rate = env_steps_per_s(env, args.horizon)
        envs.append(env_rate)
        env_sims.append(sim_rate)
    env.close()
    envs, env_sims = envs[1:], env_sims[1:]
    # The peer runs last, alone: once its worker processes (and multiprocessing's fork server) exist,
    # the batched simulator in this process measured 10-15% slower, for no reason we found.
    venv = SubprocVecEnv([lambda: PeerPDEnv(args.robot, args.decimation) for _ in range(args.peer_procs)])
    peers = [peer_steps_per_s(venv, args.horizon) for _ in range(args.repeats + 1)][1:]
    venv.close()
    overhead = statistics.median(1.0 - e / s for e, s in zip(envs, env_sims, strict=True))
    raw, simv, peer = statistics.median(raws), statistics.median(sims), statistics.median(peers)
    speedup = simv / peer
    # The ratio is the median of per-round ratios: a slow spell on the machine cancels within a round.
    ratio = statistics.median(s / r for s, r in zip(sims, raws, strict=True))
    result = {
        "robot": args.robot,
        "num_envs": args.num_envs,
        "decimation": args.decimation,
        "threads": args.threads,
        "horizon": args.horizon,
        "repeats": args.repeats,
        "raw_steps_per_s": round(raw, 1),
        "sim_steps_per_s": round(simv, 1),
        "ratio": round(ratio, 3),
        "task": args.task,
        "env_sim_steps_per_s": round(statistics.median(env_sims), 1),
        "env_steps_per_s": round(statistics.median(envs), 1),
        "task_overhead": round(overhead, 3),
        "peer_steps_per_s": round(peer, 1),
        "peer_procs": args.peer_procs,
        "speedup_vs_peer": round(speedup, 2),
        "mujoco": mujoco.__version__,
        "machine": machine(),
        "command": "python benchmarks/sim_throughput.py "
        + f"--robot {args.robot} --num-envs {args.num_envs} --threads {args.threads} --task {args.task}",
    }
    report(result, args.json)


if __name__ == "__main__":
    main()
