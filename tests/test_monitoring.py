"""Run bookkeeping and monitoring: meta.json per start, curves across resumed starts, videos, rollouts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from humanoid_prior.monitoring import read_curves, rollout_frames, vector_isa, write_run_metadata, write_video


def test_every_start_of_a_run_is_recorded_and_the_config_is_the_latest(tmp_path: Path):
    write_run_metadata(tmp_path, {"seed": 1})
    write_run_metadata(tmp_path, {"seed": 2})
    starts = json.loads((tmp_path / "meta.json").read_text())["starts"]
    assert len(starts) == 2
    assert {"git_commit", "machine", "mujoco", "torch", "command"} <= set(starts[1])
    assert starts[1]["machine"].endswith("cores")
    assert json.loads((tmp_path / "config.json").read_text()) == {"seed": 2}


def test_the_machine_string_names_the_instruction_set_that_two_cpus_of_one_model_name_differ_in() -> None:
    def info(flags: str) -> str:
        return f"processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 {flags}\n\nprocessor\t: 1\n"

    assert vector_isa(info("avx avx2 fma")) == "AVX2"
    assert vector_isa(info("avx2 avx512f avx512bw")) == "AVX-512"
    assert vector_isa(info("avx2 avx512f avx512_bf16")) == "AVX-512 BF16"
    assert vector_isa(info("avx2 avx512f amx_bf16 amx_tile")) == "AVX-512 BF16"
    assert vector_isa(info("neon asimd")) == ""  # unknown: nothing claimed
    assert vector_isa("") == ""


def test_curves_join_the_event_files_of_a_resumed_run_by_env_step(tmp_path: Path):
    from torch.utils.tensorboard import SummaryWriter

    for steps, minutes in (((100, 200), (1.0, 2.0)), ((300,), (3.5,))):  # first start, then the resume
        writer = SummaryWriter(str(tmp_path), filename_suffix=f".{steps[0]}")
        for step, minute in zip(steps, minutes, strict=True):
            writer.add_scalar("time/trained_minutes", minute, step)
            if step != 200:
                writer.add_scalar("env/track/lin_vel_error", 0.5 - step / 1000, step)
        writer.close()
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2
    curves = read_curves(tmp_path)
    np.testing.assert_array_equal(curves["steps"], [100, 200, 300])
    np.testing.assert_allclose(curves["minutes"], [1.0, 2.0, 3.5])
    np.testing.assert_allclose(curves["lin_vel_error"], [0.4, np.nan, 0.2])
    assert np.isnan(curves["terrain_level"]).all()


def test_curves_come_from_the_csv_logs_where_a_bundle_left_out_tensorboard(tmp_path: Path):
    (tmp_path / "progress_0.csv").write_text(
        "time/trained_minutes,env/curriculum/terrain_level,time/total_timesteps\n1.0,,100\n2.0,0.5,200\n"
    )
    (tmp_path / "progress_1.csv").write_text("time/total_timesteps,time/trained_minutes\n300,3.5\n")
    curves = read_curves(tmp_path)
    np.testing.assert_array_equal(curves["steps"], [100, 200, 300])
    np.testing.assert_allclose(curves["minutes"], [1.0, 2.0, 3.5])
    np.testing.assert_allclose(curves["terrain_level"], [np.nan, 0.5, np.nan])


def test_a_video_has_every_frame_at_its_size(tmp_path: Path):
    import imageio.v3 as iio

    frames = [np.full((48, 64, 3), 20 * i, dtype=np.uint8) for i in range(5)]
    path = write_video(frames, tmp_path / "sub" / "v.mp4", fps=25)
    back = iio.imread(path)
    assert back.shape == (5, 48, 64, 3)
    assert back[4].mean() == pytest.approx(80, abs=3)  # the frames are in order


class HeldCommandEnv:
    """Records the command each step sees; renders the step index."""

    dt = 0.02

    def __init__(self) -> None:
        self.commands = type("C", (), {"commands": np.zeros((2, 3))})()
        self.seen: list[np.ndarray] = []
        self.steps = 0

    def reset(self):
        return {"obs": np.zeros((2, 1))}

    def observe(self, restart_history: bool = False):
        assert restart_history, "a command set after the reset must restart the history"
        return {"obs": self.commands.commands[:, :1].copy()}

    def step(self, actions):
        self.seen.append(actions.copy())
        self.steps += 1
        return {"obs": self.commands.commands[:, :1].copy()}, None, None, None, None

    def render(self, index: int, width: int, height: int):
        return np.full((height, width, 3), self.steps, dtype=np.uint8)


def test_a_rollout_holds_the_command_from_its_first_step_and_lasts_its_seconds():
    env = HeldCommandEnv()
    frames = rollout_frames(env, lambda obs: obs["obs"] * 2.0, seconds=0.1, width=8, height=6,
                            command=(0.5, 0.0, 0.1))  # fmt: skip
    assert len(frames) == 5 and frames[0].shape == (6, 8, 3) and frames[-1][0, 0, 0] == 5
    np.testing.assert_allclose(env.seen[0], [[1.0], [1.0]])  # the policy saw the command before step 1
