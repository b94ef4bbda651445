"""`train.py robot` reports a robot and turns configuration errors into one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _train(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args], capture_output=True, text=True, cwd=REPO
    )


def test_robot_report_for_a_user_file(tmp_path: Path) -> None:
    robot_file = tmp_path / "biped.yaml"
    robot_file.write_text(
        "name: my_biped\n"
        "mjcf: menagerie:berkeley_humanoid/berkeley_humanoid.xml\n"
        "actuated_joints: [LL_HR, LL_HAA, LL_HFE, LL_KFE, LL_FFE, LL_FAA,\n"
        "                  LR_HR, LR_HAA, LR_HFE, LR_KFE, LR_FFE, LR_FAA]\n"
        "default_joint_pos: [-0.071, 0.103, -0.463, 0.983, -0.35, 0.126,\n"
        "                    0.071, -0.103, -0.463, 0.983, -0.35, -0.126]\n"
        "kp: [20, 20, 30, 30, 20, 5, 20, 20, 30, 30, 20, 5]\n"
        "kd: [1, 1, 1.5, 1.5, 1, 0.3, 1, 1, 1.5, 1.5, 1, 0.3]\n"
        "torque_limits: [20, 20, 30, 30, 20, 5, 20, 20, 30, 30, 20, 5]\n"
        "action_scale: 0.25\nbase_body: torso\nfeet_bodies: [ll_faa, lr_faa]\nimu_site: imu\n"
        "nominal_base_height: 0.49\n"
    )
    result = _train("robot", "--robot-file", str(robot_file))
    assert result.returncode == 0, result.stderr
    assert "robot 'my_biped'" in result.stdout
    assert "11 LR_FAA" in result.stdout
    assert "-> ok" in result.stdout


def test_bad_robot_is_one_clear_line() -> None:
    result = _train("robot", "--robot", "g7")
    assert result.returncode == 1
    assert "error: unknown robot 'g7'" in result.stderr
    assert "Traceback" not in result.stderr
