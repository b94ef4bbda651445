"""Simulation: robots, terrain, the batched MuJoCo simulator (installed as ``humanoid_prior.envs``)."""

from . import registration  # noqa: F401  (registers the gymnasium ids humanoid_prior/<Robot>-<Terrain>-v0)
