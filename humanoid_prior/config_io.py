"""Rebuild typed config dataclasses from the plain data they were saved as (run dirs, checkpoints)."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def from_dict(cls: type[T], data: Any) -> T:
    """Inverse of `config.to_dict` for config dataclasses.

    Nested dataclasses, tuples, mappings and optionals are rebuilt from the type hints; unknown keys
    are an error.
    """
    return typing.cast(T, _build(cls, data, cls.__name__))


def _build(tp: Any, data: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: expected a mapping for {tp.__name__}, got {type(data).__name__}")
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {unknown} for {tp.__name__}")
        return tp(**{k: _build(hints[k], v, f"{where}.{k}") for k, v in data.items()})
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if data is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _build(arg, data, where)
            except (TypeError, ValueError) as exc:
                errors.append(str(exc))
        raise ValueError(f"{where}: {data!r} fits none of {args}: {errors}")
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_build(args[0], v, f"{where}[{i}]") for i, v in enumerate(data))
        return tuple(_build(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, data, strict=True)))
    if origin in (dict, Mapping):
        key_t, value_t = typing.get_args(tp)
        return {_build(key_t, k, where): _build(value_t, v, f"{where}[{k}]") for k, v in data.items()}
    if tp is float and isinstance(data, int | float):
        return float(data)
    return data


def with_overrides(cfg: T, overrides: list[str]) -> T:
    """`cfg` with dotted-path settings applied: ``["ppo.symmetry=false", "task.commands.lin_vel_x=[0, 1]"]``.

    Values are JSON (a bare word that is not JSON is taken as a string); the result is rebuilt and
    validated like a saved config, so a misspelt path is an error that names it.
    """
    from humanoid_prior.config import to_dict

    data = to_dict(cfg)
    for item in overrides:
        path, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r}: write it as dotted.path=value.")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        node = data
        *parents, leaf = path.split(".")
        for key in parents:
            if not isinstance(node, dict) or key not in node:
                raise ValueError(f"override {item!r}: {key!r} is not a field of the config.")
            node = node[key]
        if not isinstance(node, dict) or leaf not in node:
            raise ValueError(f"override {item!r}: {leaf!r} is not a field of the config.")
        node[leaf] = value
    return from_dict(type(cfg), data)
