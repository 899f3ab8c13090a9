"""What to prune: the `--prune` specification and the choice of channels per group.

`--prune` is a fraction for every prunable layer (`0.3`), a per-layer mapping from a JSON or TOML
file (`{"conv_2d_4": 0.5, "8": 0.25}`: op names as `mcugen inspect` numbers them, `kind_index`,
or bare op indices), or `auto` (see `mcugen.prune.auto`). Layers joined by ADD/MUL share one
channel set, so a group takes the largest fraction given to any of its layers.

Within a group, a class's score is the sum of its channels' normalized importances; the lowest
scoring classes go first, `floor(fraction * prunable classes)` of them, but never the last
channel of a layer.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from mcugen.errors import UserError
from mcugen.ir import Graph
from mcugen.prune.channels import FIXED, ChannelGraph

AUTO = "auto"


def _fraction(value, where: str) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{where}: {value!r} is not a fraction (expected a number in [0, 1))") from None
    if not 0.0 <= f < 1.0:
        raise UserError(f"{where}: fraction {f} is outside [0, 1)")
    return f


def parse_spec(value) -> float | dict[str, float] | str | None:
    """None (no pruning), one fraction, {layer: fraction}, or "auto", from an option value: a
    number, a mapping, "auto", a number as text, or the path of a .json / .toml mapping."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        return {str(k): _fraction(v, f"--prune layer {k}") for k, v in value.items()}
    if isinstance(value, (int, float)):
        return _fraction(value, "--prune")
    text = str(value).strip()
    if text == AUTO:
        return AUTO
    try:
        return _fraction(float(text), "--prune")
    except ValueError:
        pass
    return parse_spec(_load_mapping(Path(text)))


def _load_mapping(path: Path) -> dict:
    if path.suffix not in (".json", ".toml"):
        raise UserError(f"--prune {path}: expected a fraction, auto, or a .json / .toml file of {{layer: fraction}}")
    import tomllib  # Python 3.11+

    try:
        text = path.read_text()
        mapping = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except OSError as exc:
        raise UserError(f"--prune {path}: cannot read it: {exc.strerror or exc}") from None
    except ValueError as exc:  # json.JSONDecodeError and tomllib.TOMLDecodeError both are
        raise UserError(f"--prune {path}: not valid {path.suffix[1:].upper()}: {exc}") from None
    if not isinstance(mapping, dict):
        raise UserError(f"--prune {path}: expected a mapping of layer to fraction")
    return mapping


def space_fractions(graph: Graph, cg: ChannelGraph, spec: float | dict[str, float]) -> dict[int, float]:
    """Fraction per space index, from one fraction or a per-layer mapping."""
    if not isinstance(spec, dict):
        return {i: spec for i in range(len(cg.spaces))}
    by_key = {}
    for i, space in enumerate(cg.spaces):
        op = graph.ops[space.op_index]
        by_key[op.name] = by_key[str(space.op_index)] = i
    prunable = {i for group in cg.groups for i in group}
    fractions = {}
    for key, fraction in spec.items():
        if key not in by_key:
            names = ", ".join(graph.ops[s.op_index].name for i, s in enumerate(cg.spaces) if i in prunable)
            raise UserError(f"--prune: {key!r} is not a CONV_2D or FULLY_CONNECTED layer of this model; "
                            f"prunable layers: {names or 'none'}")
        if by_key[key] not in prunable and fraction > 0:
            raise UserError(f"--prune: layer {key!r} cannot be pruned: its output channels reach a graph output "
                            "or an op that mixes channels")
        fractions[by_key[key]] = fraction
    return fractions


def class_scores(cg: ChannelGraph, scores: dict[int, np.ndarray]) -> dict[int, float]:
    """Sum of the normalized importances of each class's channels."""
    total: dict[int, float] = {}
    for i, space in enumerate(cg.spaces):
        for atom, score in zip(space.atoms, scores[i]):
            root = int(cg.root[atom])
            if root != FIXED:
                total[root] = total.get(root, 0.0) + float(score)
    return total


def choose(cg: ChannelGraph, fractions: dict[int, float], scores: dict[int, float]) -> set[int]:
    """The classes to remove: per group, the lowest scoring ones, keeping a channel per layer."""
    removed: set[int] = set()
    for group in cg.groups:
        fraction = max(fractions.get(i, 0.0) for i in group)
        classes = cg.free_classes(group)
        target = int(np.floor(fraction * len(classes) + 1e-9))
        remaining = {i: len(cg.spaces[i].atoms) for i in group}
        members = {c: Counter() for c in classes}  # class -> channels it holds in each layer
        for i in group:
            for atom in cg.spaces[i].atoms:
                root = int(cg.root[atom])
                if root in members:
                    members[root][i] += 1
        taken = 0
        for c in sorted(classes, key=lambda c: (scores[c], c)):
            if taken == target:
                break
            counts = members[c]
            if all(remaining[i] - n >= 1 for i, n in counts.items()):
                for i, n in counts.items():
                    remaining[i] -= n
                removed.add(c)
                taken += 1
    return removed
