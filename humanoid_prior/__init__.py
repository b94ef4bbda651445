"""humanoid_prior: teacher-motion-prior locomotion for humanoid robots."""

__version__ = "0.1.0"
