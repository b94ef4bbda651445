"""Simulation: robots, terrain, the batched MuJoCo simulator (installed as ``humanoid_prior.envs``)."""
