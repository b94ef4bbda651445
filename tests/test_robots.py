"""Built-in robots compile, name what exists, track PD targets and stand; bad descriptions fail clearly."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import mujoco
import numpy as np
import pytest

from humanoid_prior.envs.model_builder import build_model
from humanoid_prior.envs.robots import (
    ROBOTS,
    RobotConfigError,
    get_robot,
    load_robot_file,
    resolve_mjcf,
)


@pytest.mark.parametrize("name", list(ROBOTS))
def test_compiles_with_named_elements(name: str, built) -> None:
    rm = built(name)
    m, robot = rm.model, rm.robot
    assert m.nu == len(robot.actuated_joints)
    # Actuator i drives actuated joint i: the policy order is the actuator order.
    for i, joint in enumerate(robot.actuated_joints):
        assert m.joint(int(m.actuator_trnid[i, 0])).name == joint
        assert m.jnt_type[m.joint(joint).id] == mujoco.mjtJoint.mjJNT_HINGE
    hinge_names = {m.joint(j).name for j in range(m.njnt) if m.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE}
    assert hinge_names == set(robot.actuated_joints), "every other joint must have been welded"
    for body in (robot.base_body, *robot.feet_bodies):
        assert m.body(body).id > 0
    assert m.site(robot.imu_site).id >= 0
    assert m.opt.timestep == pytest.approx(0.005)
    np.testing.assert_allclose(m.actuator_gainprm[:, 0], robot.kp)
    np.testing.assert_allclose(m.actuator_biasprm[:, 2], -np.asarray(robot.kd))
    np.testing.assert_allclose(m.actuator_forcerange[:, 1], robot.torque_limits)


@pytest.mark.parametrize("name", list(ROBOTS))
def test_pd_tracks_a_step_with_base_held(name: str, built) -> None:
    rm = built(name)
    m, d = rm.model, mujoco.MjData(rm.model)
    held = rm.default_qpos(base_height=2.0)  # hanging in the air, feet clear of the ground
    d.qpos[:] = held
    lo, hi = rm.joint_range[:, 0], rm.joint_range[:, 1]
    target = np.clip(np.asarray(rm.robot.default_joint_pos) + 0.15, lo + 0.02, hi - 0.02)
    d.ctrl[:] = target
    base = slice(rm.base_qpos_adr, rm.base_qpos_adr + 7)
    for _ in range(int(1.5 / m.opt.timestep)):
        mujoco.mj_step(m, d)
        d.qpos[base] = held[base]  # hold the base fixed
        d.qvel[rm.base_dof_adr : rm.base_dof_adr + 6] = 0.0
    q = d.qpos[rm.joint_qpos_adr]
    # Steady-state error is gravity torque / kp on the dangling leg: a few hundredths of a radian.
    np.testing.assert_allclose(q, target, atol=0.05)
    assert np.abs(d.qvel[rm.joint_dof_adr]).max() < 0.1, "joints should have settled"


@pytest.mark.parametrize("name", list(ROBOTS))
def test_stands_on_flat_ground_for_half_a_second(name: str, built) -> None:
    rm = built(name)
    m, d = rm.model, mujoco.MjData(rm.model)
    nominal = rm.robot.nominal_base_height
    d.qpos[:] = rm.default_qpos(base_height=nominal + 0.02)
    d.ctrl[:] = rm.robot.default_joint_pos
    heights = []
    for _ in range(int(0.5 / m.opt.timestep)):
        mujoco.mj_step(m, d)
        heights.append(d.qpos[rm.base_qpos_adr + 2])
    assert min(heights) > 0.8 * nominal
    # The configured nominal height is where the robot actually stands (within 4 cm).
    assert abs(np.median(heights[-20:]) - nominal) < 0.04
    sensors = rm.sensor_slices
    found = [d.sensordata[sensors[f"foot{i}_contact"]][0] for i in range(len(rm.robot.feet_bodies))]
    assert all(f >= 1 for f in found), f"both feet should touch the ground, contacts {found}"
    weight = m.body_subtreemass[m.body(rm.robot.base_body).id] * 9.81
    support = -sum(d.sensordata[sensors[f"foot{i}_contact"]][3] for i in range(len(found)))
    assert support == pytest.approx(weight, rel=0.25), "the feet carry the robot's weight"


def test_welded_joint_keeps_its_pose(built) -> None:
    """T1's arms weld at shoulder roll ±1.4, elbow yaw ±0.4: the hands sit where the free model puts them."""
    robot = get_robot("t1")
    free_model = mujoco.MjModel.from_xml_path(str(resolve_mjcf(robot.mjcf)))
    free = mujoco.MjData(free_model)
    free.qpos[:7] = (0, 0, 1, 1, 0, 0, 0)
    for joint, angle in robot.weld_joint_pos.items():
        free.qpos[free_model.jnt_qposadr[free_model.joint(joint).id]] = angle
    mujoco.mj_kinematics(free_model, free)

    rm = built("t1")
    welded = mujoco.MjData(rm.model)
    welded.qpos[:] = rm.default_qpos(base_height=1.0)
    welded.qpos[rm.joint_qpos_adr] = 0.0
    mujoco.mj_kinematics(rm.model, welded)
    for hand in ("left_hand_link", "right_hand_link"):
        np.testing.assert_allclose(welded.body(hand).xpos, free.body(hand).xpos, atol=1e-9)
        np.testing.assert_allclose(welded.body(hand).xquat, free.body(hand).xquat, atol=1e-9)
    assert np.linalg.norm(free.body("left_hand_link").xpos - free.body("AL1").xpos) > 0.1


def test_unknown_robot_lists_known_names() -> None:
    with pytest.raises(
        RobotConfigError, match=r"unknown robot 'g2'.*Known robots: g1, h1, t1, berkeley_humanoid"
    ):
        get_robot("g2")


def test_missing_joint_names_closest() -> None:
    joints = ("left_hip_pitch_jnt", *get_robot("g1").actuated_joints[1:])
    with pytest.raises(
        RobotConfigError, match=r"joint 'left_hip_pitch_jnt' \(in actuated_joints\).*left_hip_pitch_joint"
    ):
        build_model(dataclasses.replace(get_robot("g1"), actuated_joints=joints))


def test_missing_site_and_body_named() -> None:
    with pytest.raises(RobotConfigError, match=r"site 'imu_pelvis' \(in imu_site\).*imu_in_pelvis"):
        build_model(dataclasses.replace(get_robot("g1"), imu_site="imu_pelvis"))
    with pytest.raises(RobotConfigError, match=r"body 'left_foot' \(in feet_bodies\)"):
        build_model(dataclasses.replace(get_robot("g1"), feet_bodies=("left_foot", "right_ankle_roll_link")))


def test_list_length_mismatch_names_the_field() -> None:
    with pytest.raises(RobotConfigError, match="kd has 11 entries but actuated_joints has 12"):
        dataclasses.replace(get_robot("g1"), kd=get_robot("g1").kd[:-1])


def test_unwelded_unactuated_joint_is_refused() -> None:
    with pytest.raises(
        RobotConfigError, match=r"joints \['waist_yaw_joint'\] are neither actuated nor welded"
    ):
        build_model(
            dataclasses.replace(
                get_robot("g1"),
                weld_joints=(
                    "waist_roll_joint",
                    "waist_pitch_joint",
                    "*_shoulder_*",
                    "*_elbow_*",
                    "*_wrist_*",
                ),
            )
        )


def test_weld_pattern_matching_nothing_is_refused() -> None:
    with pytest.raises(RobotConfigError, match=r"joint '\*_tail_\*' \(in weld_joints\)"):
        build_model(
            dataclasses.replace(get_robot("g1"), weld_joints=(*get_robot("g1").weld_joints, "*_tail_*"))
        )


def _as_yaml(robot_fields: dict, mjcf: str) -> str:
    lines = [f"mjcf: {mjcf}"]
    for key, value in robot_fields.items():
        if key == "mjcf":
            continue
        if isinstance(value, tuple):
            lines.append(f"{key}: [{', '.join(str(v) for v in value)}]")
        elif isinstance(value, dict):
            lines.append(f"{key}: {{{', '.join(f'{k}: {v}' for k, v in value.items())}}}")
        else:
            lines.append(f"{key}: {value}")
    return "\n".join(lines) + "\n"


def test_user_robot_file_yaml_and_toml(tmp_path: Path) -> None:
    reference = get_robot("berkeley_humanoid")
    mjcf = resolve_mjcf(reference.mjcf)
    fields = dataclasses.asdict(reference)
    yaml_file = tmp_path / "my_robot.yaml"
    yaml_file.write_text(_as_yaml(fields, str(mjcf)))
    from_yaml = load_robot_file(yaml_file)
    assert dataclasses.replace(from_yaml, mjcf=reference.mjcf) == reference

    toml_lines = [f'mjcf = "{mjcf}"']
    for key, value in fields.items():
        if key in ("mjcf", "weld_joint_pos"):
            continue
        text = str(value).lower() if isinstance(value, bool) else repr(value)
        toml_lines.append(f"{key} = {text}".replace("(", "[").replace(")", "]").replace("'", '"'))
    toml_file = tmp_path / "my_robot.toml"
    toml_file.write_text("\n".join(toml_lines) + "\n")
    from_toml = load_robot_file(toml_file)
    assert from_toml.actuated_joints == reference.actuated_joints
    assert from_toml.kp == reference.kp
    assert build_model(from_toml).model.nu == 12


def test_user_robot_file_relative_mjcf_and_errors(tmp_path: Path) -> None:
    fields = dataclasses.asdict(get_robot("berkeley_humanoid"))
    (tmp_path / "bot.yaml").write_text(_as_yaml(fields, "missing.xml"))
    with pytest.raises(RobotConfigError, match=f"MJCF file not found: {tmp_path / 'missing.xml'}"):
        load_robot_file(tmp_path / "bot.yaml")
    (tmp_path / "typo.yaml").write_text("name: x\nmjcf: a.xml\nkpp: [1]\n")
    with pytest.raises(RobotConfigError, match=r"unknown field.*'kpp' \(did you mean 'kp'\?\)"):
        load_robot_file(tmp_path / "typo.yaml")
    (tmp_path / "broken.yaml").write_text("name: [x\n")
    with pytest.raises(RobotConfigError, match="is not valid YAML"):
        load_robot_file(tmp_path / "broken.yaml")
    (tmp_path / "partial.yaml").write_text("name: x\nmjcf: menagerie:unitree_g1/g1.xml\n")
    with pytest.raises(RobotConfigError, match=r"missing required field.*actuated_joints"):
        load_robot_file(tmp_path / "partial.yaml")


def test_collision_bodies_touch_the_ground_only(built) -> None:
    m = built("g1").model

    def bits(body: str) -> set[tuple[int, int]]:
        b = m.body(body).id
        return {
            (int(m.geom_contype[g]), int(m.geom_conaffinity[g]))
            for g in range(m.ngeom)
            if m.geom_bodyid[g] == b
        }

    ground = m.geom("ground").id
    assert bits("left_knee_link") - {(0, 0)} == {(2, 1)}  # collides with the ground (1, 2) only
    assert (int(m.geom_contype[ground]), int(m.geom_conaffinity[ground])) == (1, 2)
    assert bits("left_wrist_yaw_link") <= {(0, 0)}, "arm geoms do not collide at all"
    selfish = build_model(dataclasses.replace(get_robot("g1"), self_collisions=True)).model
    knee = selfish.body("left_knee_link").id
    assert {int(selfish.geom_contype[g]) for g in range(selfish.ngeom) if selfish.geom_bodyid[g] == knee} >= {
        3
    }
    with pytest.raises(RobotConfigError, match=r"body 'left_shin' \(in collision_bodies\)"):
        build_model(dataclasses.replace(get_robot("g1"), collision_bodies=("left_shin",)))


def test_menagerie_location_can_be_overridden(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HUMANOID_PRIOR_MENAGERIE", str(tmp_path))
    with pytest.raises(RobotConfigError, match=f"MJCF file not found: {tmp_path}/unitree_g1/g1.xml"):
        resolve_mjcf(get_robot("g1").mjcf)
