"""Export (TorchScript, ONNX, manifest) and the robot runtime (``humanoid_prior.deploy``).

* `export`: `export_policy(run_dir)` writes `policy.pt`, `policy.onnx` and `deploy.json` (`manifest`),
  after checking both files against the training policy.
* `runtime`: the control loop (`Runtime`) over a `robot.Robot`: `observation` (the env's observation
  code on robot states), `inference` (TorchScript or ONNX Runtime), `safety`.
* `mujoco_robot`: the sim2sim backend; `sim2sim`: an episode on it with tracking metrics.

See docs/deploy.md.
"""
