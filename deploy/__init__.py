"""Export (TorchScript, ONNX, manifest) and the robot runtime (``humanoid_prior.deploy``).

* `export`: `export_policy(run_dir)` writes `policy.pt`, `policy.onnx` and `deploy.json` (`manifest`),
  after checking both files against the training policy.
* `runtime`: the control loop (`Runtime`) over a `robot.Robot`: `observation` (the env's observation
  code on robot states), `inference` (TorchScript or ONNX Runtime), `safety`.
* `mujoco_robot`: the sim2sim backend; `sim2sim`: an episode on it with tracking metrics.
* `unitree_g1`: a Unitree G1 over DDS (`unitree_hg`: its messages and CRC); `unitree_g1_sim`: a simulated
  G1 speaking the same topics; `hardware_session`: damping until armed, then the runtime;
  `operator`: commands from the G1's remote or a keyboard.

See docs/deploy.md and docs/unitree_g1.md.
"""
