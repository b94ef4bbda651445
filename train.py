#!/usr/bin/env python
"""The command line, `python train.py <command>`: a shim for `humanoid_prior.cli` (also `humanoid-prior`)."""

from humanoid_prior.cli import main

if __name__ == "__main__":
    main()
