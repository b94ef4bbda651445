"""The example robot files in examples/ work the first time: check, train, export, sim2sim (issue 11)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import Recorder

from humanoid_prior.deploy.export import export_policy
from humanoid_prior.deploy.sim2sim import run_sim2sim
from humanoid_prior.envs.model_builder import build_model
from humanoid_prior.envs.robots import load_robot_file
from humanoid_prior.robot_check import drop_test
from humanoid_prior.runs.policy_io import load_policy

REPO = Path(__file__).resolve().parents[1]
APOLLO = REPO / "examples" / "apptronik_apollo.yaml"


def test_apollo_stands_on_its_explicit_contact_geoms(bad_input: Recorder) -> None:
    """Apollo's MJCF turns every collision off (its scene pairs the soles with its floor): without
    `contact_geoms` it falls through the floor, and the robot check says so."""
    import dataclasses

    robot = load_robot_file(APOLLO)
    held = drop_test(build_model(robot), 3.0)
    assert held.verdict(robot.nominal_base_height, 3.0) == "ok: stood for the whole test"
    bare = dataclasses.replace(robot, contact_geoms=())
    fallen = drop_test(build_model(bare), 1.0)
    assert not fallen.feet_touched.any() and fallen.base_height[-1] < 0
    verdict = fallen.verdict(bare.nominal_base_height, 1.0)
    assert verdict.startswith("no contact between the feet and the ground")
    bad_input("robot description", "Apptronik Apollo without contact_geoms (train.py robot)", verdict)


def test_apollo_trains_exports_and_runs_in_sim2sim(tmp_path: Path) -> None:
    args = [sys.executable, str(REPO / "train.py"), "teacher", "--robot-file", str(APOLLO),
            "--terrain", "flat", "--no-wandb", "--task.sim.num-envs", "16", "--task.sim.nthread", "1",
            "--ppo.n-steps", "32", "--ppo.batch-size", "256", "--ppo.n-epochs", "1",
            "--run.total-steps", "2048",
            "--run.video-every", "0", "--run.no-progress-bar", "--run.run-dir", str(tmp_path),
            "--run.name", "apollo"]  # fmt: skip
    result = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = tmp_path / "apollo"
    policy = load_policy(run_dir)
    assert policy.num_timesteps == 2048 and policy.cfg.task.robot == "apollo"
    assert policy.cfg.ppo.symmetry, "the example has a mirror map"
    exported = export_policy(run_dir, tmp_path / "deploy")
    sim = run_sim2sim(exported.directory, (0.0, 0.0, 0.0), seconds=1.0, engine="onnx", soft_start_s=0.5)
    loop = sim.loop
    assert loop["policy_steps"] >= 45 and loop["estop"] is None, loop
