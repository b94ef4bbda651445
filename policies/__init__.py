"""Torch modules: actor/critic, student with auxiliary heads, discriminator (``humanoid_prior.policies``).

The networks arrive with the teacher and student issues.
"""
