#!/usr/bin/env python
"""humanoid_prior command line: one entry point for every stage.

    python train.py robot --robot g1                 # compile a robot and check it stands
    python train.py robot --robot-file my_robot.yaml # the same for your own robot description

Training stages (teacher, student, export, play, eval, pipeline) join as they are built.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import tyro

from humanoid_prior.envs.robots import RobotConfigError
from humanoid_prior.robot_check import RobotCheckArgs, run_robot_check

# Subcommand name -> (its argument dataclass, what runs it).
COMMANDS: dict[str, tuple[type, Callable[[Any], None]]] = {
    "robot": (RobotCheckArgs, lambda args: print(run_robot_check(args))),
}


def main() -> None:
    """Parse one subcommand and run it; configuration errors end with their message, not a traceback."""
    args = tyro.extras.subcommand_cli_from_dict(
        {name: cls for name, (cls, _) in COMMANDS.items()}, prog="train.py"
    )
    run = next(fn for cls, fn in COMMANDS.values() if isinstance(args, cls))
    try:
        run(args)
    except RobotConfigError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
