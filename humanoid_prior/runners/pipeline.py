"""The main job: teacher -> teacher data -> student -> evaluation -> export, each stage resumable.

`run_pipeline` keeps its stages' state in `<root>/pipeline.json`; a stage that finished is skipped
when the pipeline runs again, and an interrupted training stage resumes from its newest checkpoint.
Stages are budgeted in env steps (summed over envs), not minutes: the same 2-core machine has run the
simulator at 8k and at 28k steps/s on different days, so a time budget gives anything from a standing
to a walking robot. `budget` scales every stage's steps (0.25 for a quick look, 2 for a longer run);
`teacher_minutes` / `student_minutes` are optional wall-clock caps on top.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from humanoid_prior.config import TeacherDataCfg, student_preset, teacher_preset
from humanoid_prior.runs.checkpoint import atomic_write


@dataclass(frozen=True)
class PipelineCfg:
    """What the main job trains and for how long."""

    robot: str = "g1"
    """Built-in robot."""
    terrain: str = "flat"
    """'flat' or 'rough'. Flat is the default because it is what gives a walking student within a
    couple of hours on a 2-core machine; rough needs many times the budget there."""
    budget: float = 1.0
    """Scales every stage's env steps."""
    teacher_steps: int = 10_000_000
    """Teacher training env steps at budget 1 (the flat teacher met its target, <= 0.15 m/s and <= 2% falls,
    at 6.0 M and 7.0 M steps in two seeds: docs/results/teacher_g1_flat.json; 10 M leaves a margin)."""
    student_steps: int = 5_000_000
    """Student training env steps at budget 1."""
    teacher_minutes: float | None = None
    """Optional wall-clock cap of the teacher stage (not scaled by the budget)."""
    student_minutes: float | None = None
    """Optional wall-clock cap of the student stage (not scaled by the budget)."""
    num_envs: int = 128
    """Envs per training batch (teacher and student)."""
    sim_threads: int = 0
    """MuJoCo threads of each training stage (0: one per core). Results do not depend on it; use 1 when
    two jobs share a 2-core machine, or they slow each other down several-fold."""
    teacher_data_transitions: int = 200_000
    """Teacher motion transitions recorded for the discriminator."""
    root: str = "runs/pipeline"
    """Where the stages' run directories, the exported policy and pipeline.json go."""
    use_wandb: bool = True
    """Log the training stages to W&B (offline unless WANDB_MODE says otherwise)."""
    report: str | None = None
    """Also write the result summary (stages with env steps and minutes, teacher and student evaluation,
    budget, command, machine) as JSON to this path, e.g. docs/results/pipeline_g1.json."""

    def __post_init__(self) -> None:
        if self.budget <= 0:
            raise ValueError(f"budget must be > 0, got {self.budget}.")


class Pipeline:
    """Runs the stages in order, recording each one's completion and duration."""

    def __init__(self, cfg: PipelineCfg) -> None:
        self.cfg = cfg
        self.root = Path(cfg.root)
        self.state_path = self.root / "pipeline.json"
        self.state: dict[str, Any] = (
            json.loads(self.state_path.read_text()) if self.state_path.is_file() else {"stages": {}}
        )
        self.teacher_dir = self.root / "teacher"
        self.student_dir = self.root / "student"
        self.policy_dir = self.root / "policy"

    def run(self) -> dict[str, Any]:
        """Every stage not yet done, then the summary (also written to pipeline.json)."""
        stages: list[tuple[str, Callable[[], Any]]] = [
            ("teacher", self.train_teacher),
            ("teacher_data", self.record_teacher_data),
            ("student", self.train_student),
            ("eval", self.evaluate),
            ("export", self.export),
        ]
        for i, (name, stage) in enumerate(stages, 1):
            done = self.state["stages"].get(name, {})
            if done.get("done"):
                print(f"[{i}/{len(stages)}] {name}: done earlier ({done['seconds'] / 60:.1f} min), skipped")
                continue
            print(f"[{i}/{len(stages)}] {name} ...", flush=True)
            start = time.perf_counter()
            result = stage()
            self.state["stages"][name] = {
                "done": True,
                "seconds": time.perf_counter() - start,
                "result": result,
            }
            if name in ("teacher", "student"):
                from humanoid_prior.runs.policy_io import load_policy

                self.state["stages"][name]["env_steps"] = load_policy(Path(result)).num_timesteps
            self._save()
        return self.state

    def _save(self) -> None:
        text = json.dumps(self.state, indent=2) + "\n"
        atomic_write(self.state_path, lambda f: f.write(text.encode()))

    def _steps(self, steps: int) -> int:
        return round(steps * self.cfg.budget)

    def _stage_run(
        self, cfg: Any, run_dir: Path, steps: int, minutes: float | None
    ) -> tuple[Any, Path | None]:
        """A stage's config in `run_dir` at its share of the budget, and the run to resume (if any)."""
        run = dataclasses.replace(cfg.run, run_dir=str(run_dir.parent), name=run_dir.name,
                                  total_steps=self._steps(steps), time_limit_min=minutes)  # fmt: skip
        resume = run_dir if (run_dir / "config.json").is_file() else None
        return dataclasses.replace(cfg, run=run), resume

    def train_teacher(self) -> str:
        """The privileged teacher on the chosen terrain (resumes a stopped run)."""
        from humanoid_prior.runners.teacher import train_teacher

        cfg = teacher_preset(self.cfg.robot, self.cfg.terrain, num_envs=self.cfg.num_envs)
        cfg = dataclasses.replace(
            cfg, task=cfg.task.with_batch(self.cfg.num_envs, nthread=self.cfg.sim_threads)
        )
        cfg, resume = self._stage_run(cfg, self.teacher_dir, self.cfg.teacher_steps, self.cfg.teacher_minutes)
        train_teacher(cfg, resume=resume, use_wandb=self.cfg.use_wandb)
        return str(self.teacher_dir)

    def record_teacher_data(self) -> str:
        """The teacher's motion transitions for the discriminator."""
        from humanoid_prior.runners.teacher_data import load_or_record

        data_cfg = TeacherDataCfg(transitions=self.cfg.teacher_data_transitions)
        return str(load_or_record(self.teacher_dir, data_cfg).path)

    def train_student(self) -> str:
        """The TMP student from the teacher (resumes a stopped run)."""
        from humanoid_prior.runners.student import teacher_config
        from humanoid_prior.runners.student import train_student as train

        cfg = student_preset(teacher_config(self.teacher_dir), str(self.teacher_dir), "tmp")
        cfg = dataclasses.replace(
            cfg, task=cfg.task.with_batch(self.cfg.num_envs, nthread=self.cfg.sim_threads),
            teacher_data=dataclasses.replace(cfg.teacher_data, transitions=self.cfg.teacher_data_transitions),
        )  # fmt: skip
        cfg, resume = self._stage_run(cfg, self.student_dir, self.cfg.student_steps, self.cfg.student_minutes)
        train(cfg, resume=resume, use_wandb=self.cfg.use_wandb)
        return str(self.student_dir)

    def evaluate(self) -> dict[str, dict[str, float]]:
        """The evaluation protocol on teacher and student; eval.json in each run directory."""
        from humanoid_prior.evaluation import evaluate
        from humanoid_prior.evaluation import protocol as eval_protocol
        from humanoid_prior.runs.policy_io import load_policy

        summaries = {}
        for name, run_dir in (("teacher", self.teacher_dir), ("student", self.student_dir)):
            policy = load_policy(run_dir)
            protocol = eval_protocol(policy.cfg.task.terrain_name)
            result = evaluate(policy.cfg.task, policy, protocol)
            (run_dir / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
            summaries[name] = result["summary"]
        return summaries

    def export(self) -> str:
        """TorchScript + ONNX + deploy.json of the student."""
        from humanoid_prior.deploy.export import export_policy

        return str(export_policy(self.student_dir, self.policy_dir).directory)


def report(cfg: PipelineCfg, state: dict[str, Any], command: str) -> dict[str, Any]:
    """The pipeline's result as a JSON-able summary (what `PipelineCfg.report` writes).

    Per stage its minutes and env steps; per policy the evaluation summary and its per-command table.
    """
    from humanoid_prior.config import to_dict
    from humanoid_prior.monitoring import machine

    stages = state["stages"]
    keys = ("lin_vel_error", "yaw_rate_error", "fall_rate", "return", "distance")
    out: dict[str, Any] = {
        "stages": {
            name: {"minutes": round(stage["seconds"] / 60.0, 2), "env_steps": stage.get("env_steps")}
            for name, stage in stages.items()
        },
        "minutes": round(sum(stage["seconds"] for stage in stages.values()) / 60.0, 2),
        "budget": cfg.budget,
        "config": to_dict(cfg),
        "command": command,
        "machine": machine(),
    }
    for name, summary in stages["eval"]["result"].items():
        out[name] = {k: summary[k] for k in keys}
        evaluation = Path(cfg.root) / name / "eval.json"
        if evaluation.is_file():
            table = json.loads(evaluation.read_text())["table"]
            out[name]["table"] = {cell: {k: row[k] for k in keys} for cell, row in table.items()}
    return out


def summary_text(state: dict[str, Any]) -> str:
    """Where the policy is, its evaluation next to the teacher's, and how to deploy it."""
    stages = state["stages"]
    evals = stages["eval"]["result"]
    policy = stages["export"]["result"]
    lines = [
        "",
        "Pipeline complete.",
        f"  exported policy: {policy}/ (policy.pt, policy.onnx, deploy.json)",
        "",
    ]
    lines.append(
        f"  {'':10s} {'lin. vel. err (m/s)':>20s} {'yaw err (rad/s)':>16s} {'falls':>7s} {'return':>8s}"
    )
    for name, s in evals.items():
        lines.append(f"  {name:10s} {s['lin_vel_error']:20.3f} {s['yaw_rate_error']:16.3f} "
                     f"{s['fall_rate']:7.1%} {s['return']:8.2f}")  # fmt: skip
    minutes = sum(v["seconds"] for v in stages.values()) / 60
    lines += [
        "",
        "  stage times: " + ", ".join(f"{k} {v['seconds'] / 60:.1f} min" for k, v in stages.items()),
        f"  total: {minutes:.0f} min",
        f"  sim2sim: python train.py deploy --policy {policy} --backend mujoco --command 0.5,0,0",
    ]
    return "\n".join(lines)
