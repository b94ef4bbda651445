"""The policy input on the robot, built by the env's own observation code from a robot state.

`PolicyObservation` fills a `TaskState` of batch 1 from a `RobotState` (policy joint order) and runs
the training `ObservationManager` on it with the manifest's terms, scales and clips, noise off; the
frames go through the training `FrameHistory`. Nothing here re-implements a term: a term changed in
`humanoid_prior.envs.observations` changes on the robot too.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from humanoid_prior.envs.frames import quat_rotate_inverse
from humanoid_prior.envs.history import FrameHistory
from humanoid_prior.envs.observations import (
    OBS_TERMS,
    ObservationManager,
    ObsGroupCfg,
    ObsTermCfg,
    gait_phase,
)
from humanoid_prior.envs.task_state import TaskState

from .manifest import Manifest, ManifestError
from .robot import RobotState

_DOWN = np.array([[0.0, 0.0, -1.0]])
_TASK_FIELDS = frozenset(f.name for f in dataclasses.fields(TaskState))


class PolicyObservation:
    """Raw policy input (1, history_len * frame_size) from robot states, oldest frame first."""

    def __init__(self, manifest: Manifest, probe: RobotState) -> None:
        """`probe` is a first reading (policy joint order): the term sizes are checked on it."""
        self.manifest = m = manifest
        layout = m.observation
        j = m.num_joints
        unknown = sorted({t.name for t in layout.terms} - set(OBS_TERMS))
        if unknown:
            raise ManifestError(
                f"manifest: observation term(s) {unknown} are not known to this version of humanoid_prior "
                f"(known: {', '.join(OBS_TERMS)}); install the version that exported it "
                f"({m.package_version})."
            )
        self.state = TaskState(
            dt=m.control_period_s, default_joint_pos=m.array("default_joint_pos"),
            base_ang_vel=np.zeros((1, 3)), projected_gravity=np.zeros((1, 3)), commands=np.zeros((1, 3)),
            joint_pos=np.zeros((1, j)), joint_vel=np.zeros((1, j)), actions=np.zeros((1, j)),
            gait_phase=np.zeros(1),
        )  # fmt: skip
        self.fill(probe, np.zeros(3), np.zeros(j), 0)
        self._check_terms()
        group = ObsGroupCfg(
            tuple(ObsTermCfg(t.name, t.scale, clip=t.clip) for t in layout.terms), noisy=False
        )
        self.manager = ObservationManager({layout.group: group}, self.state, np.random.default_rng(0))
        self.group = layout.group
        self.history = FrameHistory(1, layout.history_len, layout.frame_size)
        self._fresh = True

    def _check_terms(self) -> None:
        """Every term must give (1, size) values from this robot; otherwise say which and why."""
        for term in self.manifest.observation.terms:
            try:
                value = np.asarray(OBS_TERMS[term.name](self.state))
            except (ValueError, IndexError, TypeError) as exc:
                value, error = None, str(exc)
            else:
                error = ""
            if value is not None and value.shape == (1, term.size):
                continue
            got = f"shape {value.shape}" if value is not None else f"an error ({error})"
            if value is not None and value.shape[:1] == (0,):
                raise ValueError(
                    f"the policy reads observation term '{term.name}' ({term.size} values), which this "
                    "robot does not provide: it is privileged simulator state (a teacher's input). Deploy a "
                    "student (proprio only), or give the robot a state estimate of it in RobotState.extras."
                )
            raise ValueError(
                f"observation term '{term.name}' gives {got} from this robot but the policy was trained "
                f"with {term.size} values; the robot does not match the manifest "
                f"({self.manifest.num_joints} joints). Check that the robot backend and the manifest are for "
                "the same robot, or re-export the policy."
            )

    def fill(self, robot: RobotState, command: np.ndarray, last_action: np.ndarray, policy_step: int) -> None:
        """Write a reading (policy joint order), the command, the last action and the clock into the state."""
        s = self.state
        s.base_ang_vel[0] = robot.base_ang_vel
        s.base_quat = np.asarray(robot.base_quat, dtype=np.float64)[
            None
        ]  # privileged terms in the base frame
        s.projected_gravity[:] = quat_rotate_inverse(s.base_quat, _DOWN)
        s.commands[0] = command
        s.joint_pos[0] = robot.joint_pos
        s.joint_vel[0] = robot.joint_vel
        s.actions[0] = last_action
        s.gait_phase[0] = gait_phase(policy_step, self.manifest.control_period_s, self.manifest.gait_period_s)
        for name, value in robot.extras.items():
            if name not in _TASK_FIELDS:
                raise ValueError(
                    f"RobotState.extras['{name}'] is not a TaskState field; known: {sorted(_TASK_FIELDS)}."
                )
            setattr(s, name, np.asarray(value)[None])

    def frame(self) -> np.ndarray:
        """The current frame (1, frame_size) float32 from the filled state (a copy)."""
        return self.manager.compute(self.state, noise=False)[self.group].copy()

    def __call__(
        self, robot: RobotState, command: np.ndarray, last_action: np.ndarray, policy_step: int
    ) -> np.ndarray:
        """Add this step's frame to the history and return the policy input (1, input_size) float32."""
        self.fill(robot, command, last_action, policy_step)
        frame = self.frame()
        if self._fresh:
            self.history.reset(frame)  # no past yet: every slot holds the first frame, as in training
            self._fresh = False
        else:
            self.history.push(frame)
        return self.history.flat()

    def reset(self) -> None:
        """Forget the history (the next call fills it with its frame)."""
        self._fresh = True
