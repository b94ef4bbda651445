"""Simulation: robots, terrain, the batched MuJoCo simulator (installed as ``humanoid_prior.envs``).

Importing the package imports nothing heavy, so the robot runtime can use its observation and frame code
without MuJoCo or gymnasium; the gymnasium ids are registered by ``import humanoid_prior.envs.registration``.
"""
