"""Checking the names a config selects terms by (rewards, terminations) against their registry."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any


def check_term_names(kind: str, names: Iterable[str], registry: Mapping[str, Any]) -> None:
    """A ValueError for the first name not in `registry`, suggesting the closest and listing them all."""
    for name in names:
        if name not in registry:
            close = difflib.get_close_matches(name, registry, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"unknown {kind} term {name!r}; {hint}known terms: {', '.join(registry)}")
