import math
from typing import Any

import numpy as np
import pytest

from humanoid_prior.envs import rewards
from humanoid_prior.envs.rewards import (
    REWARD_TERMS,
    RewardCfg,
    RewardManager,
    RewardParams,
    foot_phases,
    g1_reward_weights,
)
from humanoid_prior.envs.task_state import TaskState

P = RewardParams(
    base_height_target=0.78
)  # sigma 0.25, height 0.78, swing 0.08, stance 0.55, soft 0.9, air 0.4, stumble 4


def make_state(n: int = 2, j: int = 2, f: int = 2, **overrides: Any) -> TaskState:
    """Standing-still state: zeros everywhere, upright gravity, joint ranges [-1, 1], torque limits 10."""
    fields: dict[str, Any] = dict(
        dt=0.02,
        default_joint_pos=np.zeros(j),
        base_ang_vel=np.zeros((n, 3)),
        projected_gravity=np.tile([0.0, 0.0, -1.0], (n, 1)),
        commands=np.zeros((n, 3)),
        joint_pos=np.zeros((n, j)),
        joint_vel=np.zeros((n, j)),
        actions=np.zeros((n, j)),
        gait_phase=np.zeros(n),
        last_actions=np.zeros((n, j)),
        base_lin_vel=np.zeros((n, 3)),
        base_pos=np.zeros((n, 3)),
        base_height=np.full(n, P.base_height_target),
        joint_acc=np.zeros((n, j)),
        joint_torque=np.zeros((n, j)),
        joint_limits=np.tile([-1.0, 1.0], (j, 1)),
        torque_limits=np.full(j, 10.0),
        feet_pos=np.zeros((n, f, 3)),
        feet_vel=np.zeros((n, f, 3)),
        feet_height=np.zeros((n, f)),
        feet_contact_force=np.zeros((n, f, 3)),
        feet_contact=np.zeros((n, f), bool),
        feet_air_time=np.zeros((n, f)),
        feet_first_contact=np.zeros((n, f), bool),
        undesired_contacts=np.zeros(n),
        terminated=np.zeros(n, bool),
        hip_splay_mask=np.array([True] + [False] * (j - 1)),  # joint 0 stands for a hip roll/yaw joint
    )
    fields.update({k: np.asarray(v) if k != "dt" else v for k, v in overrides.items()})
    return TaskState(**fields)


def term(name: str, s: TaskState, p: RewardParams = P) -> np.ndarray:
    out = REWARD_TERMS[name](s, p)
    assert out.shape == (s.commands.shape[0],)
    assert out.dtype == np.float64
    return out


# --- velocity tracking -----------------------------------------------------------------------------


def test_tracking_lin_vel():
    # env 0: cmd (1, 0), v (0.5, 0): err² = 0.25 -> exp(-0.25 / 0.25) = exp(-1) = 0.3679
    # env 1: cmd (0.5, -0.5), v (0.5, -0.5, vz = 3): err² = 0 (v_z ignored) -> 1
    s = make_state(
        commands=[[1.0, 0.0, 0.0], [0.5, -0.5, 0.0]],
        base_lin_vel=[[0.5, 0.0, 0.0], [0.5, -0.5, 3.0]],
    )
    np.testing.assert_allclose(term("tracking_lin_vel", s), [math.exp(-1.0), 1.0])


def test_tracking_ang_vel():
    # env 0: cmd_yaw 1, ω_z 0.5 (ω_x 9 ignored): err² = 0.25 -> exp(-1)
    # env 1: cmd_yaw 0, ω_z -1: err² = 1 -> exp(-4) = 0.01832
    s = make_state(commands=[[0, 0, 1.0], [0, 0, 0]], base_ang_vel=[[9.0, 0, 0.5], [0, 0, -1.0]])
    np.testing.assert_allclose(term("tracking_ang_vel", s), [math.exp(-1.0), math.exp(-4.0)])


# --- base ------------------------------------------------------------------------------------------


def test_lin_vel_z():
    # v = (1, 2, 3) -> 3² = 9; v = (0, 0, -0.5) -> 0.25
    s = make_state(base_lin_vel=[[1.0, 2.0, 3.0], [0, 0, -0.5]])
    np.testing.assert_allclose(term("lin_vel_z", s), [9.0, 0.25])


def test_ang_vel_xy():
    # ω = (1, 2, 5) -> 1 + 4 = 5 (ω_z ignored); ω = (-0.5, 0, 0) -> 0.25
    s = make_state(base_ang_vel=[[1.0, 2.0, 5.0], [-0.5, 0, 0]])
    np.testing.assert_allclose(term("ang_vel_xy", s), [5.0, 0.25])


def test_orientation():
    # upright (0, 0, -1) -> 0; tilted (0.6, 0, -0.8) -> 0.36
    s = make_state(projected_gravity=[[0, 0, -1.0], [0.6, 0, -0.8]])
    np.testing.assert_allclose(term("orientation", s), [0.0, 0.36])


def test_base_height():
    # target 0.78: h 0.68 -> 0.1² = 0.01; h 0.78 -> 0
    s = make_state(base_height=[0.68, 0.78])
    np.testing.assert_allclose(term("base_height", s), [0.01, 0.0], atol=1e-12)


# --- joints ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "field"),
    [("joint_torques", "joint_torque"), ("joint_vel", "joint_vel"), ("joint_acc", "joint_acc")],
)
def test_joint_sum_of_squares(name, field):
    # (1, -2, 3) -> 1 + 4 + 9 = 14; (0.5, 0, 0) -> 0.25
    values: dict[str, Any] = {field: [[1.0, -2.0, 3.0], [0.5, 0, 0]]}
    s = make_state(j=3, **values)
    np.testing.assert_allclose(term(name, s), [14.0, 0.25])


def test_action_rate():
    # a - a_prev = (1, -1) -> 2 ; (0.5, 0) - (0, 0.5) = (0.5, -0.5) -> 0.5
    s = make_state(actions=[[1.0, 0.0], [0.5, 0.0]], last_actions=[[0.0, 1.0], [0.0, 0.5]])
    np.testing.assert_allclose(term("action_rate", s), [2.0, 0.5])


def test_joint_pos_limits():
    # joint 0 range [0, 2]: middle 1, width 2, soft half-width 0.9 * 2 / 2 = 0.9 -> soft [0.1, 1.9]
    # joint 1 range [-1, 3]: middle 1, width 4, soft half-width 0.9 * 4 / 2 = 1.8 -> soft [-0.8, 2.8]
    # joint 2 range (-inf, inf): never penalised
    # env 0: q = (1.95, -1.0, 100): 1.95 - 1.9 = 0.05 ; -0.8 - (-1.0) = 0.2 ; 0 -> 0.25
    # env 1: q = (0.05, 2.8, -100): 0.1 - 0.05 = 0.05 ; exactly at the soft limit -> 0 ; 0 -> 0.05
    # env 2: q = (1.0, 1.0, 0): inside -> 0
    s = make_state(
        n=3,
        j=3,
        joint_limits=[[0.0, 2.0], [-1.0, 3.0], [-np.inf, np.inf]],
        joint_pos=[[1.95, -1.0, 100.0], [0.05, 2.8, -100.0], [1.0, 1.0, 0.0]],
    )
    np.testing.assert_allclose(term("joint_pos_limits", s), [0.25, 0.05, 0.0], atol=1e-12)


def test_torque_limits():
    # limits (10, 20), soft 0.9 -> (9, 18)
    # env 0: τ = (-10, 19): 10 - 9 = 1 ; 19 - 18 = 1 -> 2
    # env 1: τ = (9, -18): at the soft limit -> 0
    s = make_state(torque_limits=[10.0, 20.0], joint_torque=[[-10.0, 19.0], [9.0, -18.0]])
    np.testing.assert_allclose(term("torque_limits", s), [2.0, 0.0], atol=1e-12)


def test_stand_still():
    # q - q_default: default (0.1, -0.2), q (0.3, -0.5) -> |0.2| + |-0.3| = 0.5 in all envs
    # env 0: cmd (0.05, 0.05, 0.05), norm 0.0866 < 0.1 -> 0.5
    # env 1: cmd (0, 0, 0.2) yaw only, norm 0.2 -> 0 (the yaw command counts)
    # env 2: cmd (0.09, 0, 0.09), each component < 0.1 but norm 0.127 -> 0
    s = make_state(
        n=3,
        default_joint_pos=[0.1, -0.2],
        joint_pos=[[0.3, -0.5]] * 3,
        commands=[[0.05, 0.05, 0.05], [0, 0, 0.2], [0.09, 0, 0.09]],
    )
    np.testing.assert_allclose(term("stand_still", s), [0.5, 0.0, 0.0])


# --- feet ------------------------------------------------------------------------------------------


def test_feet_air_time_counts_first_contacts_and_is_zeroed_for_small_commands():
    # target 0.4 s; air times (0.6, 0.3) in every env
    # env 0: cmd (1, 0), only the left foot touches down: 0.6 - 0.4 = 0.2
    # env 1: cmd (0, 0.5), both touch down: 0.2 + (0.3 - 0.4) = 0.1
    # env 2: cmd (0.05, 0.05, 1), |cmd_xy| = 0.0707 < 0.1 -> zeroed although both touch down
    s = make_state(
        n=3,
        commands=[[1.0, 0, 0], [0, 0.5, 0], [0.05, 0.05, 1.0]],
        feet_air_time=[[0.6, 0.3]] * 3,
        feet_first_contact=[[True, False], [True, True], [True, True]],
    )
    np.testing.assert_allclose(term("feet_air_time", s), [0.2, 0.1, 0.0], atol=1e-12)


def test_foot_phases_offset_by_half_cycle():
    # F = 2: right = (phase + 0.5) % 1; phase 0.7 -> 0.2 ; F = 4 offsets 0, 0.25, 0.5, 0.75
    np.testing.assert_allclose(foot_phases(np.array([0.1, 0.7]), 2), [[0.1, 0.6], [0.7, 0.2]])
    np.testing.assert_allclose(foot_phases(np.array([0.8]), 4), [[0.8, 0.05, 0.3, 0.55]])


def test_gait_contact_matches_the_clock_per_foot():
    # stance while foot phase < 0.55
    # env 0: phase 0.1 -> left 0.1 (stance), right 0.6 (swing); contact (T, F): both match -> 2
    # env 1: phase 0.7 -> left 0.7 (swing), right 0.2 (stance); contact (T, F): both wrong -> 0
    # env 2: phase 0.5 -> left 0.5 (stance), right 0.0 (stance); contact (T, F): left matches -> 1
    s = make_state(
        n=3,
        gait_phase=[0.1, 0.7, 0.5],
        feet_contact=[[True, False], [True, False], [True, False]],
    )
    np.testing.assert_allclose(term("gait_contact", s), [2.0, 0.0, 1.0])


def test_feet_phase_follows_the_swing_trajectory_above_the_lower_foot():
    # stance 0.55, clearance 0.08, sigma 0.0025
    # env 0: phase 0.275 -> left 0.275 (stance, target 0), right 0.775 (mid-swing: sin(pi/2) -> 0.08);
    #        heights (0.03, 0.11): right 0.08 above the left -> error 0 -> 1
    # env 1: the same clock, both feet on the ground: right misses 0.08 -> exp(-0.0064 / 0.0025)
    # env 2: the same clock, a hop: both feet 0.1 up together, each 0 above the lower -> as env 1
    # env 3: the same clock, the wrong foot up: (0.08² + 0.08²) / 0.0025
    s = make_state(
        n=4,
        gait_phase=[0.275] * 4,
        feet_height=[[0.03, 0.11], [0.03, 0.03], [0.13, 0.13], [0.11, 0.03]],
    )
    np.testing.assert_allclose(
        term("feet_phase", s), [1.0, math.exp(-2.56), math.exp(-2.56), math.exp(-5.12)], rtol=1e-9
    )
    with pytest.raises(ValueError, match="swing_clearance"):
        RewardParams(swing_clearance=0.0)


def test_feet_swing_height_only_for_feet_in_the_air():
    # target 0.08
    # env 0: heights (0.18, 0.5), contact (F, T): (0.18 - 0.08)² = 0.01 ; stance foot ignored -> 0.01
    # env 1: heights (0.0, 0.08), both in the air: 0.08² = 0.0064 + 0 -> 0.0064
    s = make_state(feet_height=[[0.18, 0.5], [0.0, 0.08]], feet_contact=[[False, True], [False, False]])
    np.testing.assert_allclose(term("feet_swing_height", s), [0.01, 0.0064])


def test_feet_slip_only_for_feet_in_contact():
    # env 0: left in contact, v (0.3, 0.4, 9): 0.09 + 0.16 = 0.25 (v_z ignored); right in the air, v 5 -> 0
    # env 1: both in contact, v (1, 0, 0) and (0, -2, 0): 1 + 4 = 5
    s = make_state(
        feet_vel=[[[0.3, 0.4, 9.0], [5.0, 5.0, 5.0]], [[1.0, 0, 0], [0, -2.0, 0]]],
        feet_contact=[[True, False], [True, True]],
    )
    np.testing.assert_allclose(term("feet_slip", s), [0.25, 5.0])


def test_feet_stumble():
    # env 0: right foot F = (3, 4, 1): |F_xy| = 5 > 4 * 1 -> 1
    # env 1: F = (3, 4, 2): 5 < 4 * 2 = 8 -> 0 ; left foot F = (0, 0, 300) -> 0
    s = make_state(
        feet_contact_force=[[[0, 0, 300.0], [3.0, 4.0, 1.0]], [[0, 0, 300.0], [3.0, 4.0, 2.0]]],
    )
    np.testing.assert_allclose(term("feet_stumble", s), [1.0, 0.0])


# --- events ----------------------------------------------------------------------------------------


def test_undesired_contacts_termination_alive():
    s = make_state(undesired_contacts=[3, 0], terminated=[False, True])
    np.testing.assert_allclose(term("undesired_contacts", s), [3.0, 0.0])
    np.testing.assert_allclose(term("termination", s), [0.0, 1.0])
    np.testing.assert_allclose(term("alive", s), [1.0, 1.0])


def test_every_term_is_registered_and_documented():
    assert set(REWARD_TERMS) == set(g1_reward_weights())
    assert "hip_deviation" not in REWARD_TERMS
    for name, fn in REWARD_TERMS.items():
        assert getattr(rewards, name) is fn
        assert fn.__doc__ and "\n" not in fn.__doc__.strip()
        assert term(name, make_state()).shape == (2,)


# --- config ----------------------------------------------------------------------------------------


def test_unknown_term_error_suggests_the_closest_name_and_lists_all():
    with pytest.raises(ValueError, match="tracking_lin_vl") as info:
        RewardCfg(weights={"tracking_lin_vl": 1.0})
    msg = str(info.value)
    assert "did you mean 'tracking_lin_vel'" in msg
    assert all(name in msg for name in REWARD_TERMS)


def test_unknown_term_without_close_match_still_lists_all():
    with pytest.raises(ValueError, match="unknown reward term 'zzz'") as info:
        RewardCfg(weights={"zzz": 1.0})
    assert "did you mean" not in str(info.value)
    assert "feet_stumble" in str(info.value)


@pytest.mark.parametrize(
    "kwargs", [{"tracking_sigma": 0.0}, {"stance_phase_fraction": 1.0}, {"soft_joint_limit": 1.5}]
)
def test_params_reject_out_of_range(kwargs):
    with pytest.raises(ValueError):
        RewardParams(**kwargs)


def test_default_cfg_is_the_g1_table():
    w = RewardCfg().weights
    assert w["termination"] == 0.0  # no fall penalty: walking is learnt through falls (issue 10)
    assert w["feet_slip"] == -0.2 and w["hip_pos"] == -1.0
    assert w["torque_limits"] == 0.0


def test_hip_pos_counts_only_the_hip_splay_joints():
    # joint 0 is the hip (mask), joint 1 is not: q - q0 = (0.3, 2.0) -> 0.3² = 0.09; env 1 at default -> 0
    s = make_state(joint_pos=[[0.3, 2.0], [0.0, 0.0]])
    np.testing.assert_allclose(term("hip_pos", s), [0.09, 0.0])


# --- manager ---------------------------------------------------------------------------------------


def test_manager_total_is_weighted_sum_times_dt():
    # dt 0.02; weights: lin_vel_z -2, alive 0.5
    # env 0: v_z = 1: -2 * 1 * 0.02 + 0.5 * 1 * 0.02 = -0.04 + 0.01 = -0.03
    # env 1: v_z = 0:  0             + 0.01         =  0.01
    cfg = RewardCfg(weights={"lin_vel_z": -2.0, "alive": 0.5})
    mgr = RewardManager(cfg, num_envs=2, dt=0.02)
    s = make_state(base_lin_vel=[[0, 0, 1.0], [0, 0, 0]])
    np.testing.assert_allclose(mgr.compute(s), [-0.03, 0.01])
    np.testing.assert_allclose(mgr.last_terms["lin_vel_z"], [-0.04, 0.0])
    np.testing.assert_allclose(mgr.last_terms["alive"], [0.01, 0.01])


def test_manager_skips_zero_weight_terms(monkeypatch):
    def boom(s, p):
        raise AssertionError("a weight-0 term was evaluated")

    monkeypatch.setitem(REWARD_TERMS, "feet_stumble", boom)
    mgr = RewardManager(RewardCfg(weights={"alive": 1.0, "feet_stumble": 0.0}), num_envs=2, dt=0.1)
    assert mgr.term_names == ["alive"]
    np.testing.assert_allclose(mgr.compute(make_state()), [0.1, 0.1])  # 1 * 1 * 0.1


def test_manager_episode_sums_and_reset():
    # dt 0.5, weights: alive 2, termination -4, 3 envs
    # step 1: nobody terminated: alive 2 * 1 * 0.5 = 1 each; termination 0
    # step 2: env 1 terminated: alive +1 -> 2 each; termination -4 * 1 * 0.5 = -2 for env 1
    # reset([1, 2]): alive mean (2 + 2) / 2 = 2 ; termination mean (-2 + 0) / 2 = -1
    mgr = RewardManager(RewardCfg(weights={"alive": 2.0, "termination": -4.0}), num_envs=3, dt=0.5)
    mgr.compute(make_state(n=3))
    mgr.compute(make_state(n=3, terminated=[False, True, False]))
    np.testing.assert_allclose(mgr.episode_sums["termination"], [0.0, -2.0, 0.0])
    log = mgr.reset(np.array([1, 2]))
    assert log == pytest.approx({"rew/alive": 2.0, "rew/termination": -1.0})
    # only envs 1 and 2 were zeroed; env 0 keeps its sum and keeps accumulating
    np.testing.assert_allclose(mgr.episode_sums["alive"], [2.0, 0.0, 0.0])
    mgr.compute(make_state(n=3))
    np.testing.assert_allclose(mgr.episode_sums["alive"], [3.0, 1.0, 1.0])
    assert mgr.reset([]) == {}


def test_only_positive_rewards_clips_the_total():
    # weights: lin_vel_z -1, alive 1, dt 1; env 0 v_z 2: 1 - 4 = -3 -> 0 ; env 1: 1 - 0 = 1 -> 1
    s = make_state(base_lin_vel=[[0, 0, 2.0], [0, 0, 0]])
    weights = {"lin_vel_z": -1.0, "alive": 1.0}
    clipped = RewardManager(RewardCfg(weights=weights, only_positive_rewards=True), num_envs=2, dt=1.0)
    np.testing.assert_allclose(clipped.compute(s), [0.0, 1.0])
    # episode sums keep the unclipped per-term values
    np.testing.assert_allclose(clipped.episode_sums["lin_vel_z"], [-4.0, 0.0])
    plain = RewardManager(RewardCfg(weights=weights), num_envs=2, dt=1.0)
    np.testing.assert_allclose(plain.compute(s), [-3.0, 1.0])


def test_manager_rejects_wrong_batch_size():
    mgr = RewardManager(RewardCfg(weights={"alive": 1.0}), num_envs=3, dt=0.02)
    with pytest.raises(ValueError, match="alive"):
        mgr.compute(make_state(n=2))


def test_default_g1_manager_on_a_standing_state():
    # make_state: zero command and velocities, base at the target height, gait phase 0, feet on the
    # ground plane (height 0) but not in contact. Non-zero per-second contributions:
    #   tracking_lin_vel 1.0 * exp(0) = 1.0 ; tracking_ang_vel 0.5 * 1 = 0.5 ; alive 0.15
    #   gait_contact: left phase 0 and right phase 0.5 are both stance (< 0.55), no contact -> 0 matches
    #   feet_swing_height: -20 * 2 * (0 - 0.08)² = -20 * 0.0128 = -0.256
    # total = (1.0 + 0.5 + 0.15 - 0.256) * 0.02 = 1.394 * 0.02 = 0.02788
    mgr = RewardManager(RewardCfg(params=P), num_envs=2, dt=0.02)
    assert "torque_limits" not in mgr.term_names and "tracking_lin_vel" in mgr.term_names
    np.testing.assert_allclose(mgr.compute(make_state()), [0.02788, 0.02788])
    assert mgr.last_terms["gait_contact"] == pytest.approx([0.0, 0.0])
