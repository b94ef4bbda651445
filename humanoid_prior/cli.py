"""humanoid_prior command line: one entry point for every stage (`train.py` or `humanoid-prior`).

    python train.py teacher                          # G1 teacher on the rough curriculum (default preset)
    python train.py teacher --preset g1_flat         # G1 on flat ground, 10 M env steps
    python train.py teacher --robot-file my_robot.yaml --terrain flat   # a robot of your own
    python train.py teacher --ppo.learning-rate 3e-4 --task.sim.num-envs 128   # any field overrides
    python train.py teacher --resume runs/<run>      # continue a run from its last checkpoint
    python train.py teacher-data --run runs/<teacher> # record the teacher's motion for the discriminator
    python train.py student --teacher runs/<teacher> # TMP student (--method distill|ppo_proprio,
                                                     #   --no-gan/--no-aux/--no-imitation ablations)
    python train.py student --resume runs/<run>      # continue a student run
    python train.py eval --run runs/<run>            # fixed evaluation protocol -> JSON
    python train.py export --run runs/<run>          # policy.pt, policy.onnx, deploy.json -> <run>/deploy
    python train.py deploy --policy runs/<run>/deploy --backend mujoco --command 0.5,0,0   # sim2sim
    python train.py sim-g1 --policy runs/<run>/deploy   # a simulated G1 on DDS (domain 1, lo)
    python train.py deploy --policy runs/<run>/deploy --backend unitree_g1 --network lo --domain-id 1
    python train.py pipeline [--budget 0.5]          # main job: teacher, data, student, eval, export
    python train.py play --run runs/<run>            # video of the trained policy
    python train.py robot --robot-file my_robot.yaml # compile a robot description and check it stands

`python train.py <command> --help` lists every option of a command. Configuration errors end with one
line naming the problem; HUMANOID_PRIOR_TRACEBACK=1 shows the whole traceback instead.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

from humanoid_prior.config import TeacherCfg, named_teacher_preset, teacher_preset
from humanoid_prior.envs.presets import TERRAIN_PRESETS
from humanoid_prior.envs.robots import RobotConfigError
from humanoid_prior.robot_check import RobotCheckArgs, run_robot_check
from humanoid_prior.runs.checkpoint import CheckpointError

CHECKPOINT_HELP = (
    "A checkpoint of the run other than its newest, e.g. one a periodic evaluation kept (as the row of "
    "<run>/evals.jsonl names it, relative to the run)."
)


@dataclass
class EvalArgs:
    """Run the fixed evaluation protocol on a trained run and write its JSON."""

    run: Path
    """Run directory (runs/<name>)."""
    out: Path | None = None
    """Output JSON (default: <run>/eval.json, or <run>/eval_<checkpoint name>.json with --checkpoint)."""
    protocol: str | None = None
    """'flat' or 'rough' (default: the run's terrain)."""
    seed: int | None = None
    """Seed of the evaluation envs (default: the protocol's, 12345); another seed shows whether a result
    is one draw's luck."""
    checkpoint: Annotated[Path | None, tyro.conf.arg(help=CHECKPOINT_HELP)] = None
    crossing: bool = True
    """On a terrain run, also walk the crossing test (0.10 m stairs and 15° slopes, up and down, 20 s at
    0.5 m/s; with the yaw rate held at 0, and again with the heading held) at the same seed."""


@dataclass
class PlayArgs:
    """Render a video of a trained policy."""

    run: Path
    """Run directory (runs/<name>)."""
    seconds: float = 10.0
    """Video length."""
    out: Path | None = None
    """Output MP4 (default: <run>/videos/play.mp4)."""
    command: tuple[float, float, float] = (0.5, 0.0, 0.0)
    """Held command (v_x, v_y, yaw rate)."""
    checkpoint: Annotated[Path | None, tyro.conf.arg(help=CHECKPOINT_HELP)] = None


def split_flags(
    argv: list[str], valued: tuple[str, ...], switches: tuple[str, ...]
) -> tuple[dict[str, str], list[str]]:
    """The command's own flags (`valued` take the next argument, `switches` none); the rest goes to tyro."""
    flags: dict[str, str] = {}
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg in valued:
            flags[arg] = next(args, "")
        elif arg in switches:
            flags[arg] = ""
        else:
            rest.append(arg)
    return flags, rest


def teacher(argv: list[str]) -> None:
    """`train.py teacher [--preset NAME] [--resume RUN_DIR] [--no-wandb] [config overrides]`.

    `--robot-file FILE [--terrain flat|rough]` instead of `--preset`: a robot of the user's own.
    """
    from humanoid_prior.runners.teacher import train_teacher

    flags, rest = split_flags(
        argv, valued=("--preset", "--resume", "--robot-file", "--terrain"), switches=("--no-wandb",)
    )
    if "--robot-file" in flags:  # a user's robot: its own preset, named after the robot in the file
        if "--preset" in flags:
            raise SystemExit("error: --robot-file makes its own preset; choose the ground with --terrain.")
        terrain = flags.get("--terrain", "flat")
        if terrain not in TERRAIN_PRESETS:
            raise SystemExit(f"error: --terrain takes one of {', '.join(TERRAIN_PRESETS)}, got '{terrain}'.")
        preset = f"{flags['--robot-file']} on {terrain}"
        default = teacher_preset(terrain=terrain, robot_file=flags["--robot-file"])
    else:
        preset = flags.get("--preset", "g1_rough")
        try:
            default = named_teacher_preset(preset)
        except ValueError as exc:
            raise SystemExit(f"error: {exc}") from None
    resume = Path(flags["--resume"]) if "--resume" in flags else None
    use_wandb = "--no-wandb" not in flags
    if resume is not None and rest:
        raise SystemExit(
            f"error: --resume continues with the run's saved config.json; drop the overrides {rest} "
            "(or start a new run with them)."
        )
    description = (
        f"Train a privileged teacher (preset '{preset}'; --preset NAME, --resume RUN_DIR, --no-wandb)."
    )
    cfg = tyro.cli(TeacherCfg, args=rest, default=default, prog="train.py teacher", description=description)
    run_dir = train_teacher(cfg, resume=resume, use_wandb=use_wandb)
    print(f"run directory: {run_dir}")


@dataclass
class TeacherDataArgs:
    """Record (or reuse) a teacher's motion-feature transitions for the student's discriminator."""

    run: Path
    """Teacher run directory."""
    transitions: int = 200_000
    """Transitions to record."""
    refresh: str = "if_teacher_changed"
    """'if_teacher_changed' reuses data of the same teacher checkpoint; 'always' records again."""


def teacher_data(args: TeacherDataArgs) -> None:
    """Record the teacher's motion data into its run directory."""
    from humanoid_prior.config import TeacherDataCfg
    from humanoid_prior.runners.teacher_data import load_or_record

    data = load_or_record(args.run, TeacherDataCfg(transitions=args.transitions, refresh=args.refresh))
    print(f"{len(data.pairs)} transitions of {data.feature_dim} motion features: {data.path}")


def student(argv: list[str]) -> None:
    """`train.py student --teacher RUN [--method M] [--resume RUN_DIR] [--no-wandb] [config overrides]`."""
    from humanoid_prior.config import StudentCfg, student_preset
    from humanoid_prior.runners.student import teacher_config, train_student

    flags, rest = split_flags(argv, valued=("--teacher", "--method", "--resume"), switches=("--no-wandb",))
    teacher_run = Path(flags["--teacher"]) if "--teacher" in flags else None
    method = flags.get("--method", "tmp")
    resume = Path(flags["--resume"]) if "--resume" in flags else None
    use_wandb = "--no-wandb" not in flags
    if resume is not None:
        if rest or teacher_run is not None:
            raise SystemExit(
                "error: --resume continues with the run's saved config.json; drop the other options."
            )
        print(f"run directory: {train_student(StudentCfg(), resume=resume, use_wandb=use_wandb)}")
        return
    if teacher_run is None:
        raise SystemExit("error: a student learns from a teacher: pass --teacher runs/<teacher run>.")
    default = student_preset(teacher_config(teacher_run), str(teacher_run), method)
    description = (
        "Train a student from a teacher (--teacher RUN, --method tmp|distill|ppo_proprio, --no-wandb)."
    )
    cfg = tyro.cli(StudentCfg, args=rest, default=default, prog="train.py student", description=description)
    print(f"run directory: {train_student(cfg, use_wandb=use_wandb)}")


def evaluate_run(args: EvalArgs) -> None:
    """Evaluate the newest checkpoint of a run (or `--checkpoint`)."""
    from humanoid_prior.evaluation import crossing_both_ways, evaluate
    from humanoid_prior.evaluation import protocol as eval_protocol
    from humanoid_prior.monitoring import machine
    from humanoid_prior.runs.policy_io import load_policy

    policy = load_policy(args.run, args.checkpoint)
    protocol = args.protocol or policy.cfg.task.terrain_name
    cfg = eval_protocol(protocol)
    if args.seed is not None:
        cfg = dataclasses.replace(cfg, seed=args.seed)
    result = evaluate(policy.cfg.task, policy, cfg)
    cells = None
    if args.crossing and policy.cfg.task.terrain is not None:
        result.update(crossing_both_ways(policy.cfg.task, policy, seed=cfg.seed))
        cells = result["crossing"]
    result.update(checkpoint=str(policy.checkpoint), env_steps=policy.num_timesteps,
                  minutes=policy.trained_seconds / 60.0, protocol=protocol, seed=cfg.seed,
                  command="python " + shlex.join(sys.argv), machine=machine())  # fmt: skip
    default = "eval.json" if args.checkpoint is None else f"eval_{args.checkpoint.stem}.json"
    out = args.out or args.run / default
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))
    if cells is not None:
        cells_text = (f"{name} {c['fall_rate']:.1%}, {c['distance_m']:.2f} m" for name, c in cells.items())
        print("crossing (falls, mean distance):", "; ".join(cells_text))
        print(f"crossing target met: {result['crossing_met']}")
    print(f"written: {out}")


def play(args: PlayArgs) -> None:
    """Video of env 0 under the trained policy with a held command."""
    from humanoid_prior.envs.locomotion import LocomotionEnv
    from humanoid_prior.evaluation import held_command_task
    from humanoid_prior.monitoring import rollout_frames, write_video
    from humanoid_prior.runs.policy_io import load_policy

    policy = load_policy(args.run, args.checkpoint)
    # held as the evaluation holds them: a rough run's heading law is off too
    env = LocomotionEnv(held_command_task(policy.cfg.task), seed=1)
    frames = rollout_frames(env, policy, args.seconds, width=480, height=360, command=args.command)
    env.close()
    out = write_video(frames, args.out or args.run / "videos" / "play.mp4", fps=round(1 / env.dt))
    print(f"written: {out}")


@dataclass
class ExportArgs:
    """Export a run's newest checkpoint for the robot: policy.pt, policy.onnx and deploy.json."""

    run: Path
    """Teacher or student run directory (runs/<name>)."""
    out: Path | None = None
    """Output folder (default: <run>/deploy)."""
    probes: int = 256
    """Inputs (spread over the training normaliser's range) the exports are checked on."""
    checkpoint: Annotated[Path | None, tyro.conf.arg(help=CHECKPOINT_HELP)] = None


def export(args: ExportArgs) -> None:
    """Export, check TorchScript and ONNX against the training policy, and write the manifest."""
    from humanoid_prior.deploy.export import ExportCheckError, export_policy

    try:
        result = export_policy(args.run, args.out, probes=args.probes, checkpoint=args.checkpoint)
    except ExportCheckError as exc:
        raise SystemExit(f"error: {exc}") from None
    errors = ", ".join(f"{k} {v:.1e}" for k, v in result.max_abs_error.items())
    print(f"exported {result.manifest.source['kind']} of {args.run} to {result.directory}")
    print(f"  max |exported - training| action on {result.observations} probe inputs: {errors}")
    print(f"  run it: python train.py deploy --policy {result.directory} --backend mujoco --command 0.5,0,0")


@dataclass
class DeployArgs:
    """Run an exported policy through the robot runtime: sim2sim (mujoco) or a Unitree G1 over DDS."""

    policy: Path
    """Export folder (with deploy.json, policy.pt, policy.onnx)."""
    backend: str = "mujoco"
    """'mujoco' (sim2sim at 1 kHz with PD computed in the loop) or 'unitree_g1' (a G1, or `train.py sim-g1`,
    over DDS; docs/unitree_g1.md)."""
    command: str = "0.5,0,0"
    """Held command 'v_x,v_y,yaw_rate' (m/s, m/s, rad/s); clamped to the trained ranges. unitree_g1: used
    with --operator held only."""
    network: str | None = None
    """unitree_g1: the network interface facing the robot ('lo' for the simulated G1)."""
    domain_id: int = 0
    """unitree_g1: DDS domain (a G1: 0; `train.py sim-g1`: 1)."""
    operator: str = "remote"
    """unitree_g1: where commands, arm and stop come from: 'remote' (the G1's wireless remote: start
    arms, select stops), 'keyboard' (w/s a/d q/e, space, Enter arms, x stops) or 'held' (--command,
    armed at once)."""
    seconds: float = 10.0
    """Policy time after the soft start."""
    engine: str = "onnx"
    """'onnx' (ONNX Runtime) or 'torchscript'."""
    video: Path | None = None
    """Write an MP4 of the run here."""
    real_time: bool = False
    """Pace the loop to the wall clock (timing statistics then show real jitter)."""
    sensor_latency_ms: float = 0.0
    """Age of the simulated sensor readings."""
    action_latency_ms: float = 0.0
    """Delay before a command acts on the simulated motors."""
    noise: float = 0.0
    """Scale of the simulated sensor noise (1: 0.01 rad, 1.5 rad/s and 0.2 rad/s, as in training)."""
    soft_start_s: float | None = None
    """Soft-start ramp (s), the robot held in a gantry meanwhile (default: the manifest's)."""


def deploy(args: DeployArgs) -> None:
    """Run sim2sim and print tracking, falls and the loop's timing."""
    from humanoid_prior.deploy.mujoco_robot import SimRobotCfg
    from humanoid_prior.deploy.sim2sim import run_sim2sim
    from humanoid_prior.monitoring import write_video

    if args.backend not in ("mujoco", "unitree_g1"):
        raise SystemExit(f"error: unknown backend '{args.backend}'; available: mujoco, unitree_g1.")
    try:
        parts = [float(v) for v in args.command.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 3:
        raise SystemExit(f"error: --command takes 'v_x,v_y,yaw_rate' (three numbers), got '{args.command}'.")
    sim = SimRobotCfg(
        joint_pos_noise=0.01 * args.noise, joint_vel_noise=1.5 * args.noise, ang_vel_noise=0.2 * args.noise,
        sensor_latency_s=args.sensor_latency_ms / 1e3, action_latency_s=args.action_latency_ms / 1e3,
        real_time=args.real_time,
    )  # fmt: skip
    command = (parts[0], parts[1], parts[2])
    if args.backend == "unitree_g1":
        deploy_g1(args, command)
        return
    result = run_sim2sim(args.policy, command, args.seconds, args.engine, sim, soft_start_s=args.soft_start_s,
                         video=args.video is not None)  # fmt: skip
    print(json.dumps(result.to_json(), indent=2))
    if args.video is not None:
        fps = round(1e3 / result.loop["period_ms"])
        print(f"written: {write_video(result.frames, args.video, fps=fps)}")


def deploy_g1(args: DeployArgs, command: tuple[float, float, float]) -> None:
    """The policy on a Unitree G1 (or the simulated one) over DDS: damped until armed, then soft start."""
    from humanoid_prior.deploy.hardware_session import HeldCommand, Operator, run_session
    from humanoid_prior.deploy.inference import load_engine
    from humanoid_prior.deploy.manifest import Manifest
    from humanoid_prior.deploy.operator import KeyboardOperator, RemoteOperator
    from humanoid_prior.deploy.runtime import Runtime
    from humanoid_prior.deploy.unitree_g1 import UnitreeG1Cfg, UnitreeG1Robot

    manifest = Manifest.load(args.policy)
    robot = UnitreeG1Robot(manifest, UnitreeG1Cfg(network=args.network, domain_id=args.domain_id))
    operator: Operator
    if args.operator == "remote":
        operator = RemoteOperator(robot.remote, manifest.command_ranges)
    elif args.operator == "keyboard":
        operator = KeyboardOperator(manifest.command_ranges)
    elif args.operator == "held":
        operator = HeldCommand(command)
    else:
        raise SystemExit(f"error: unknown operator '{args.operator}'; available: remote, keyboard, held.")
    try:
        safety = manifest.safety if args.soft_start_s is None else dataclasses.replace(
            manifest.safety, soft_start_s=args.soft_start_s)  # fmt: skip
        runtime = Runtime(manifest, load_engine(args.policy, args.engine, manifest.policy_files), robot,
                          safety=safety)  # fmt: skip
        print(f"connected: damping until armed ({args.operator}); stop: select / x / Ctrl-C", flush=True)
        stats = run_session(runtime, robot, operator, safety.soft_start_s + args.seconds)
    except TimeoutError as exc:
        raise SystemExit(f"error: {exc}") from None
    finally:
        robot.close()
    print(json.dumps(stats.summary(), indent=2))


@dataclass
class SimG1Args:
    """A simulated Unitree G1 on DDS (1 kHz MuJoCo, motor-driver PD from rt/lowcmd, rt/lowstate at 500 Hz)."""

    policy: Path
    """An export folder: its manifest's robot description is the robot simulated."""
    network: str = "lo"
    """Interface to publish on."""
    domain_id: int = 1
    """DDS domain (1, as Unitree's simulator, so it never meets a robot on domain 0)."""
    seconds: float = 3600.0
    """Stop after this long (or on Ctrl-C / SIGTERM)."""
    stats: Path | None = None
    """Write what happened (commands, CRC rejects, distance, falls, end-to-end latency) here as JSON."""


def sim_g1(args: SimG1Args) -> None:
    """Serve the simulated G1 until stopped."""
    from humanoid_prior.deploy.unitree_g1_sim import SimulatedG1Cfg, serve

    cfg = SimulatedG1Cfg(network=args.network, domain_id=args.domain_id)
    print(json.dumps(serve(args.policy, args.seconds, cfg, args.stats), indent=2))


def pipeline(argv: list[str]) -> None:
    """The whole pipeline with its final summary."""
    from humanoid_prior.runners.pipeline import Pipeline, PipelineCfg, report, summary_text

    cfg = tyro.cli(PipelineCfg, args=argv, prog="train.py pipeline")
    state = Pipeline(cfg).run()
    print(summary_text(state))
    if cfg.report is not None:
        path = Path(cfg.report)
        path.parent.mkdir(parents=True, exist_ok=True)
        summary = report(cfg, state, "python " + " ".join(shlex.quote(a) for a in sys.argv))
        path.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"  report: {path}")


COMMANDS: dict[str, Callable[[list[str]], object]] = {
    "teacher": teacher,
    "student": student,
    "teacher-data": lambda argv: teacher_data(
        tyro.cli(TeacherDataArgs, args=argv, prog="train.py teacher-data")
    ),
    "eval": lambda argv: evaluate_run(tyro.cli(EvalArgs, args=argv, prog="train.py eval")),
    "play": lambda argv: play(tyro.cli(PlayArgs, args=argv, prog="train.py play")),
    "pipeline": pipeline,
    "export": lambda argv: export(tyro.cli(ExportArgs, args=argv, prog="train.py export")),
    "deploy": lambda argv: deploy(tyro.cli(DeployArgs, args=argv, prog="train.py deploy")),
    "sim-g1": lambda argv: sim_g1(tyro.cli(SimG1Args, args=argv, prog="train.py sim-g1")),
    "robot": lambda argv: print(run_robot_check(tyro.cli(RobotCheckArgs, args=argv, prog="train.py robot"))),
}
"""Each command's handler, given the arguments after the command's name."""


def main(args: list[str] | None = None) -> None:
    """Dispatch to a command; configuration errors end with their message, not a traceback."""
    args = sys.argv[1:] if args is None else args
    command, argv = (args[0], args[1:]) if args else ("--help", [])
    try:
        if command not in COMMANDS:
            print(__doc__)
            raise SystemExit(0 if command in ("-h", "--help") else f"error: unknown command '{command}'")
        COMMANDS[command](argv)
    except (RobotConfigError, CheckpointError, FileNotFoundError, FileExistsError, ValueError) as exc:
        if os.environ.get("HUMANOID_PRIOR_TRACEBACK"):
            raise  # for debugging: the whole traceback instead of the one-line message
        raise SystemExit(f"error: {exc}") from None
