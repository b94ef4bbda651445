"""Compile a `RobotCfg` (+ terrain) into one MuJoCo model, editing the MJCF at load time with `MjSpec`.

Edits, in order: weld the joints the policy does not drive (freezing their bodies at the configured
angle), replace the model's actuators with one PD servo per actuated joint, replace its sensors with
the ones the task reads, add the ground (a plane or the terrain heightfield), set the physics step.
The MJCF on disk is never copied or modified.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import mujoco
import numpy as np

from .robots import RobotCfg, RobotConfigError, resolve_mjcf

if TYPE_CHECKING:
    from .terrain import Terrain

FREE = mujoco.mjtJoint.mjJNT_FREE
SPAWN_CLEARANCE = 0.03
"""Extra height (m) at which robots are spawned above their nominal standing height (the env and sim2sim)."""


@dataclass(frozen=True)
class SensorSpec:
    """A sensor the builder adds, read back by name from `sensordata`."""

    name: str
    type: mujoco.mjtSensor
    objtype: mujoco.mjtObj
    objname: str
    dim: int


@dataclass(frozen=True)
class RobotModel:
    """A compiled model plus the addresses that give names to its arrays."""

    robot: RobotCfg
    model: mujoco.MjModel
    base_qpos_adr: int
    """qpos[adr:adr+7] is the base position (world) and orientation quaternion (w, x, y, z)."""
    base_dof_adr: int
    """qvel[adr:adr+6] is the base linear velocity (world) and angular velocity (base frame)."""
    joint_qpos_adr: np.ndarray
    """qpos index of each actuated joint, in policy order."""
    joint_dof_adr: np.ndarray
    """qvel index of each actuated joint, in policy order."""
    joint_range: np.ndarray
    """(num_joints, 2) position limits of the actuated joints (rad); ±inf where unlimited."""
    sensor_slices: dict[str, slice]
    """Where each added sensor's values sit in `sensordata`."""

    @property
    def num_joints(self) -> int:
        """Number of actuated joints (the action size)."""
        return len(self.joint_qpos_adr)

    def default_qpos(self, base_height: float | None = None) -> np.ndarray:
        """Full qpos at the default joint pose, base upright over (0, 0) at `base_height` (None: nominal)."""
        qpos = self.model.qpos0.copy()
        height = self.robot.nominal_base_height if base_height is None else base_height
        qpos[self.base_qpos_adr : self.base_qpos_adr + 7] = (0.0, 0.0, height, 1.0, 0.0, 0.0, 0.0)
        qpos[self.joint_qpos_adr] = self.robot.default_joint_pos
        return qpos


def _names(elements: Iterable[object]) -> list[str]:
    return [str(getattr(e, "name", "")) for e in elements if getattr(e, "name", "")]


def _missing(kind: str, name: str, field: str, existing: Sequence[str], robot: RobotCfg) -> RobotConfigError:
    close = difflib.get_close_matches(name, existing, n=3, cutoff=0.4)
    hint = f" Closest names: {', '.join(close)}." if close else f" The model has: {', '.join(existing[:40])}."
    return RobotConfigError(
        f"robot '{robot.name}': {kind} '{name}' (in {field}) is not in {robot.mjcf}.{hint}"
    )


def _weld_joints(spec: mujoco.MjSpec, robot: RobotCfg) -> list[str]:
    """Remove the welded joints, rotating each body by its frozen angle; return the welded names."""
    hinge_names = [j.name for j in spec.joints if j.type != FREE]
    welded: list[str] = []
    for pattern in robot.weld_joints:
        matched = fnmatch.filter(hinge_names, pattern)
        if not matched:
            raise _missing("joint", pattern, "weld_joints", hinge_names, robot)
        welded += [m for m in matched if m not in welded]
    overlap = sorted(set(welded) & set(robot.actuated_joints))
    if overlap:
        raise RobotConfigError(f"robot '{robot.name}': joints {overlap} are both actuated and welded.")
    for name in robot.weld_joint_pos:
        if name not in welded:
            raise _missing("welded joint", name, "weld_joint_pos", welded, robot)
    loose = sorted(set(hinge_names) - set(welded) - set(robot.actuated_joints))
    if loose:
        raise RobotConfigError(
            f"robot '{robot.name}': joints {loose} are neither actuated nor welded; "
            "add them to actuated_joints or weld_joints (they would flop freely)."
        )
    if any(robot.weld_joint_pos.values()):
        _freeze_bodies_at(spec, robot, welded)
    for name in welded:
        spec.delete(spec.joint(name))
    return welded


def _freeze_bodies_at(spec: mujoco.MjSpec, robot: RobotCfg, welded: list[str]) -> None:
    """Give every body moved by a non-zero welded angle its posed frame relative to its parent.

    Forward kinematics of the unwelded model at the weld angles yields each such body's pose in its
    parent's frame, whatever orientation syntax the MJCF used; the joint is then deleted by the caller.
    """
    model = spec.compile()
    data = mujoco.MjData(model)
    for name, angle in robot.weld_joint_pos.items():
        data.qpos[model.jnt_qposadr[model.joint(name).id]] = angle
    mujoco.mj_kinematics(model, data)
    for name, angle in robot.weld_joint_pos.items():
        if angle == 0.0:
            continue
        body_id = int(model.jnt_bodyid[model.joint(name).id])
        body = spec.body(model.body(body_id).name)
        if any(j.name not in welded for j in body.joints):
            raise RobotConfigError(
                f"robot '{robot.name}': body '{body.name}' mixes welded joint '{name}' (non-zero angle) "
                "with driven joints; weld it at 0 or weld all its joints."
            )
        parent_id = int(model.body_parentid[body_id])
        parent_rot = data.xmat[parent_id].reshape(3, 3)
        body.pos = parent_rot.T @ (data.xpos[body_id] - data.xpos[parent_id])
        rel = np.zeros(4)
        parent_conj = np.zeros(4)
        mujoco.mju_negQuat(parent_conj, data.xquat[parent_id])
        mujoco.mju_mulQuat(rel, parent_conj, data.xquat[body_id])
        body.quat = rel
        body.alt.type = mujoco.mjtOrientation.mjORIENTATION_QUAT


_GROUND_BIT, _ROBOT_BIT = 1, 2


def _set_collisions(spec: mujoco.MjSpec, robot: RobotCfg) -> None:
    """Keep ground contact for the feet and `collision_bodies` only; robot self-contact per config.

    Bits: ground geoms are (contype 1, conaffinity 2), robot geoms (2, 1): they collide with the ground
    but not with each other; self_collisions makes robot geoms (3, 3).
    """
    bodies = _names(spec.bodies)
    keep = None if robot.collision_bodies is None else {*robot.collision_bodies, *robot.feet_bodies}
    for name in sorted(keep or ()):
        if name not in bodies:
            raise _missing("body", name, "collision_bodies", bodies, robot)
    bits = _GROUND_BIT | _ROBOT_BIT if robot.self_collisions else _ROBOT_BIT
    affinity = _GROUND_BIT | _ROBOT_BIT if robot.self_collisions else _GROUND_BIT
    geoms = _names(spec.geoms)
    for name in robot.contact_geoms:
        if name not in geoms:
            raise _missing("geom", name, "contact_geoms", geoms, robot)
    base = spec.body(robot.base_body)
    for body in [base, *base.find_all(mujoco.mjtObj.mjOBJ_BODY)]:
        for geom in body.geoms:
            if geom.name in robot.contact_geoms:
                geom.contype, geom.conaffinity = bits, affinity  # an explicit <pair> in the MJCF's scene
                continue
            if not (geom.contype or geom.conaffinity):
                continue  # visual-only geom
            if keep is None or body.name in keep:
                geom.contype, geom.conaffinity = bits, affinity
            else:
                geom.contype = geom.conaffinity = 0


def _add_pd_actuators(spec: mujoco.MjSpec, robot: RobotCfg) -> None:
    """One position servo per actuated joint: tau = clip(kp (q* - q) - kd qdot, ±limit), computed in C."""
    for act in list(spec.actuators):
        spec.delete(act)
    for name, kp, kd, limit in zip(
        robot.actuated_joints, robot.kp, robot.kd, robot.torque_limits, strict=True
    ):
        act = spec.add_actuator()
        act.name = name
        act.target = name
        act.trntype = mujoco.mjtTrn.mjTRN_JOINT
        act.gaintype = mujoco.mjtGain.mjGAIN_FIXED
        act.biastype = mujoco.mjtBias.mjBIAS_AFFINE
        act.gainprm[0] = kp
        act.biasprm[:3] = (0.0, -kp, -kd)
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcerange = (-limit, limit)
        act.ctrllimited = mujoco.mjtLimited.mjLIMITED_FALSE


def task_sensors(robot: RobotCfg) -> list[SensorSpec]:
    """The sensors the task reads: IMU on the base, and per foot its contact force, position, velocity."""
    site, xbody = mujoco.mjtObj.mjOBJ_SITE, mujoco.mjtObj.mjOBJ_XBODY
    S = mujoco.mjtSensor
    # Velocities in the base frame come from sensors on a site fixed to the base; a frame-velocity
    # sensor referenced to its own body would read zero (it measures relative motion).
    sensors = [
        SensorSpec("imu_gyro", S.mjSENS_GYRO, site, robot.imu_site, 3),
        SensorSpec("imu_accel", S.mjSENS_ACCELEROMETER, site, robot.imu_site, 3),
        SensorSpec("imu_linvel", S.mjSENS_VELOCIMETER, site, robot.imu_site, 3),
        SensorSpec("imu_quat", S.mjSENS_FRAMEQUAT, site, robot.imu_site, 4),
    ]
    # Grouped by kind, feet in order, so that each per-foot quantity is one contiguous (N, feet, dim) view.
    feet = list(enumerate(robot.feet_bodies))
    # found (number of contacts) + net contact force on the foot subtree, world frame.
    sensors += [SensorSpec(f"foot{i}_contact", S.mjSENS_CONTACT, xbody, foot, 4) for i, foot in feet]
    sensors += [SensorSpec(f"foot{i}_pos", S.mjSENS_FRAMEPOS, xbody, foot, 3) for i, foot in feet]
    sensors += [SensorSpec(f"foot{i}_linvel", S.mjSENS_FRAMELINVEL, xbody, foot, 3) for i, foot in feet]
    # Contacts of the base body alone (a fall), and of the whole robot (minus the feet: undesired).
    sensors += [
        SensorSpec("base_contact", S.mjSENS_CONTACT, mujoco.mjtObj.mjOBJ_BODY, robot.base_body, 4),
        SensorSpec("robot_contact", S.mjSENS_CONTACT, xbody, robot.base_body, 4),
    ]
    # Applied PD torque per actuated joint, in policy order.
    sensors += [
        SensorSpec(f"torque_{j}", S.mjSENS_ACTUATORFRC, mujoco.mjtObj.mjOBJ_ACTUATOR, j, 1)
        for j in robot.actuated_joints
    ]
    return sensors


_CONTACT_DATA_FOUND_FORCE = 1 | 2  # mjCONDATA_FOUND | mjCONDATA_FORCE
_CONTACT_REDUCE_NETFORCE = 3


def _add_sensors(spec: mujoco.MjSpec, sensors: list[SensorSpec]) -> None:
    for sensor in list(spec.sensors):
        spec.delete(sensor)
    for s in sensors:
        added = spec.add_sensor()
        added.name, added.type, added.objtype, added.objname = s.name, s.type, s.objtype, s.objname
        if s.type == mujoco.mjtSensor.mjSENS_CONTACT:
            # against anything; one net force over all contacts (XBODY: the subtree, BODY: the body alone).
            added.intprm[:3] = (_CONTACT_DATA_FOUND_FORCE, _CONTACT_REDUCE_NETFORCE, 1)


HFIELD_PRIORITY = 10
"""Contact priority of the heightfield: above any robot geom's (the Menagerie G1's feet have 1), so that
its contact settings are the ones used."""


def _add_ground(spec: mujoco.MjSpec, terrain: Terrain | None, sim_dt: float) -> None:
    """A plane, or the terrain as one heightfield whose grid element [0, 0] sits at `terrain.origin_xy`.

    MuJoCo collides a heightfield as a set of prisms, one per triangle. A small foot sphere (the G1's
    have a 5 mm radius) that sinks into the surface near a cell edge can be pushed out through the
    neighbouring prism's vertical wall: measured walking on an all-flat heightfield, half of the foot
    contacts had normals tilted by more than 5° (some horizontal), and a flat-ground teacher that never
    falls on a plane fell in 7 of 16 episodes. The heightfield's contacts are therefore as stiff as the
    physics step allows (time constant 2 x sim_dt; MuJoCo's default 0.02 s let the spheres sink ~13 mm):
    then 4% of the normals tilt and none of the 16 episodes falls.
    """
    world = spec.worldbody
    world.add_light(pos=(0, 0, 10), dir=(0, 0, -1), type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL)
    # A 1 m checker on the ground, so that walking reads in videos (visual only).
    spec.add_texture(
        name="ground_grid", type=mujoco.mjtTexture.mjTEXTURE_2D, builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        rgb1=(0.42, 0.47, 0.52), rgb2=(0.32, 0.37, 0.42), width=64, height=64,
    )  # fmt: skip
    material = spec.add_material(name="ground_grid", texrepeat=(1.0, 1.0), texuniform=True)
    material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "ground_grid"
    if terrain is None:
        world.add_geom(
            name="ground",
            type=mujoco.mjtGeom.mjGEOM_PLANE,
            size=(0, 0, 1),
            material="ground_grid",
            contype=_GROUND_BIT,
            conaffinity=_ROBOT_BIT,
        )
        return
    heights = np.asarray(terrain.heights, dtype=np.float64)
    ny, nx = heights.shape
    low, high = float(heights.min()), float(heights.max())
    relief = max(high - low, 1e-3)  # MuJoCo needs a positive elevation range even for flat ground
    half_x, half_y = 0.5 * (nx - 1) * terrain.horizontal_scale, 0.5 * (ny - 1) * terrain.horizontal_scale
    hfield = spec.add_hfield()
    hfield.name = "terrain"
    hfield.nrow, hfield.ncol = ny, nx
    hfield.size = (half_x, half_y, relief, 1.0)
    # MuJoCo rescales elevation data to [0, 1]; the geom offset puts the lowest cell at `low`.
    hfield.userdata = ((heights - low) / relief).ravel().tolist()
    world.add_geom(
        name="ground",
        type=mujoco.mjtGeom.mjGEOM_HFIELD,
        hfieldname="terrain",
        pos=(terrain.origin_xy[0] + half_x, terrain.origin_xy[1] + half_y, low),
        material="ground_grid",
        contype=_GROUND_BIT,
        conaffinity=_ROBOT_BIT,
        priority=HFIELD_PRIORITY,
        solref=(2.0 * sim_dt, 1.0),
    )


def _robot_model(model: mujoco.MjModel, robot: RobotCfg, sensors: list[SensorSpec]) -> RobotModel:
    """Resolve the names of `robot` to array addresses in the compiled `model`."""
    base_id = model.body(robot.base_body).id
    free = [j for j in range(model.njnt) if model.jnt_type[j] == FREE and model.jnt_bodyid[j] == base_id]
    if not free:
        raise RobotConfigError(
            f"robot '{robot.name}': base_body '{robot.base_body}' has no free joint; "
            "name the floating base body."
        )
    imu_body = int(model.site_bodyid[model.site(robot.imu_site).id])
    path = [imu_body]
    while path[-1] not in (base_id, 0):
        path.append(int(model.body_parentid[path[-1]]))
    if path[-1] != base_id or any(model.body_jntnum[b] for b in path[:-1]):
        raise RobotConfigError(
            f"robot '{robot.name}': imu_site '{robot.imu_site}' is not rigidly fixed to base_body "
            f"'{robot.base_body}'; the IMU observations assume it is."
        )
    joint_ids = [model.joint(n).id for n in robot.actuated_joints]
    limited = model.jnt_limited[joint_ids].astype(bool)
    joint_range = np.where(limited[:, None], model.jnt_range[joint_ids], [-np.inf, np.inf])
    pose = np.asarray(robot.default_joint_pos)
    outside = [
        f"{name} {q:+.3f} not in [{lo:+.3f}, {hi:+.3f}]"
        for name, q, (lo, hi) in zip(robot.actuated_joints, pose, joint_range, strict=True)
        if not lo <= q <= hi
    ]
    if outside:
        raise RobotConfigError(
            f"robot '{robot.name}': default_joint_pos lies outside the MJCF joint range for "
            f"{'; '.join(outside)} (rad); choose a default pose inside the joint limits."
        )
    slices = {}
    for s in sensors:
        sid = model.sensor(s.name).id
        adr = int(model.sensor_adr[sid])
        slices[s.name] = slice(adr, adr + int(model.sensor_dim[sid]))
    return RobotModel(
        robot=robot,
        model=model,
        base_qpos_adr=int(model.jnt_qposadr[free[0]]),
        base_dof_adr=int(model.jnt_dofadr[free[0]]),
        joint_qpos_adr=model.jnt_qposadr[joint_ids].astype(np.intp),
        joint_dof_adr=model.jnt_dofadr[joint_ids].astype(np.intp),
        joint_range=joint_range,
        sensor_slices=slices,
    )


def _check_names(spec: mujoco.MjSpec, robot: RobotCfg) -> None:
    joints, bodies, sites = _names(spec.joints), _names(spec.bodies), _names(spec.sites)
    for name in robot.actuated_joints:
        if name not in joints:
            raise _missing("joint", name, "actuated_joints", joints, robot)
    for field, name in [("base_body", robot.base_body)] + [("feet_bodies", f) for f in robot.feet_bodies]:
        if name not in bodies:
            raise _missing("body", name, field, bodies, robot)
    if robot.imu_site not in sites:
        raise _missing("site", robot.imu_site, "imu_site", sites, robot)


def build_model(robot: RobotCfg, terrain: Terrain | None = None, sim_dt: float = 0.005) -> RobotModel:
    """Load the robot's MJCF, apply the edits described in the module docstring, and compile."""
    path = resolve_mjcf(robot.mjcf)
    try:
        spec = mujoco.MjSpec.from_file(str(path))
    except ValueError as exc:
        raise RobotConfigError(f"robot '{robot.name}': MuJoCo cannot parse {path}: {exc}") from exc
    _check_names(spec, robot)
    _weld_joints(spec, robot)
    for key in list(spec.keys):  # keyframes no longer match qpos once joints are welded
        spec.delete(key)
    for floor in [g for g in spec.worldbody.geoms if g.type in (mujoco.mjtGeom.mjGEOM_PLANE,)]:
        spec.delete(floor)
    _set_collisions(spec, robot)
    _add_pd_actuators(spec, robot)
    sensors = task_sensors(robot)
    _add_sensors(spec, sensors)
    _add_ground(spec, terrain, sim_dt)
    spec.option.timestep = sim_dt
    # implicitfast integrates the PD damping implicitly: stable at 200 Hz with stiff gains.
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    model = spec.compile()
    return _robot_model(model, robot, sensors)
