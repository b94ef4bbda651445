"""The wheel installs envs/, policies/, deploy/ under the humanoid_prior namespace and nothing generic."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_namespaced_packages(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path / "dist"),
         str(REPO)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("humanoid_prior-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top_level == {"humanoid_prior"}, (
        f"only the humanoid_prior package may land in site-packages: {top_level}"
    )
    for module in ("envs/robots.py", "envs/robot_files/g1.yaml", "envs/batched_sim.py", "envs/terrain.py",
                   "policies/__init__.py", "deploy/__init__.py", "cli.py"):  # fmt: skip
        assert f"humanoid_prior/{module}" in names

    env_dir = tmp_path / "fresh"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True)  # fmt: skip
    # Dependencies (numpy, mujoco, ...) come from this test's environment through a .pth file, so the
    # check needs no network; the package itself comes only from the wheel.
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    probe = (
        "import humanoid_prior.envs, humanoid_prior.policies, humanoid_prior.deploy\n"
        "from humanoid_prior.envs.robots import get_robot\n"
        "print(humanoid_prior.envs.__file__)\n"
        "print(get_robot('g1').name)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    out = subprocess.run(
        [python, "-c", probe], check=True, capture_output=True, text=True, cwd=tmp_path, env=env
    )
    module_file, robot = out.stdout.split()
    assert Path(module_file).is_relative_to(env_dir), f"imported from {module_file}, not the fresh venv"
    assert robot == "g1"
    assert not (Path(site) / "envs").exists() and not (Path(site) / "deploy").exists()


def test_the_robot_runtime_imports_neither_the_simulator_nor_the_trainer() -> None:
    """On a robot's computer the runtime needs numpy and an inference engine: importing the control loop,
    its observation builder, the manifest and the G1 backend must not load MuJoCo, stable-baselines3,
    gymnasium or torch."""
    heavy = ("mujoco", "stable_baselines3", "gymnasium", "torch")
    probe = (
        "import sys\n"
        "import humanoid_prior.deploy.manifest, humanoid_prior.deploy.observation\n"
        "import humanoid_prior.deploy.runtime, humanoid_prior.deploy.unitree_g1\n"
        "import humanoid_prior.deploy.hardware_session, humanoid_prior.deploy.operator\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]", f"the runtime imported {out.strip()}"
