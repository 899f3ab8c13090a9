"""Which channels must be pruned together: channel atoms joined by a union-find.

Every CONV_2D and FULLY_CONNECTED opens a *space*: one fresh atom per output channel. The last
axis of every activation tensor is then an array of atoms, derived op by op:

- a depthwise convolution repeats each input atom depth_multiplier times (output channel
  c * m + j reads input channel c, so removing c removes all m);
- pooling, spatial padding, requantization, elementwise activations and reductions over spatial
  axes keep the array; a reshape whose last axis holds whole positions (a flatten before a fully
  connected layer) tiles it, so each flattened column knows its channel;
- a concatenation along channels puts its inputs' arrays end to end (the offsets come free);
- ADD, MUL and concatenations along other axes need their operands' channels to line up, so they
  join the atoms at each position into one *class*. A class is kept or removed as a whole: this is
  what prunes a residual group with one shared channel set.

Atoms whose channel must not change are joined to FIXED: graph inputs and outputs, the channels a
softmax or a reduction over channels mixes, channels added by padding, size-1 broadcast operands,
and whatever an op this analysis does not understand reads or writes. Anything not listed here is
treated that way, so an unknown op can only make pruning more conservative, never wrong.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mcugen.ir import Graph, Op

FIXED = 0  # the atom every unprunable channel is joined to
# Ops that leave the channel axis where it is and compute per channel (or move whole channels).
CHANNELWISE_OPS = ("AVERAGE_POOL_2D", "MAX_POOL_2D", "QUANTIZE", "DEQUANTIZE", "LOGISTIC")


@dataclass(frozen=True)
class Space:
    """The output channels of one CONV_2D or FULLY_CONNECTED: the unit a fraction applies to."""

    op_index: int
    atoms: np.ndarray  # global atom id of each output channel


@dataclass
class ChannelGraph:
    """The result of the analysis: atoms per activation tensor, spaces, and classes."""

    atoms: dict[str, np.ndarray]  # activation tensor -> atom id per channel of its last axis
    spaces: list[Space]
    root: np.ndarray  # class (union-find root) of every atom id; root[FIXED] == FIXED
    groups: list[list[int]] = field(default_factory=list)  # indices into spaces, joined by classes

    def free_classes(self, space_indices: list[int]) -> list[int]:
        """The prunable classes that these spaces' channels belong to, sorted."""
        roots = {int(self.root[a]) for i in space_indices for a in self.spaces[i].atoms}
        return sorted(roots - {FIXED})

    def kept(self, atoms: np.ndarray, removed: set[int]) -> np.ndarray:
        """True for each of `atoms` whose class is not removed."""
        return np.array([int(self.root[a]) not in removed for a in atoms], bool)

    def fc_columns(self, graph: Graph, op: Op) -> np.ndarray:
        """The atom of each input column of a FULLY_CONNECTED: its input is read as rows of
        `in_features` elements, so column j holds channel j % C of the (NHWC) input."""
        atoms = self.atoms[op.inputs[0]]
        features = graph.tensor(op.inputs[1]).shape[1]
        if features % len(atoms):  # the analysis fixed such an input: nothing to remove
            return np.full(features, FIXED, np.int64)
        return np.tile(atoms, features // len(atoms))


class _Builder:
    """Walks the ops once, allocating atoms and joining them."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.parent = [FIXED]
        self.atoms: dict[str, np.ndarray] = {}
        self.spaces: list[Space] = []

    def new(self, count: int, fixed: bool = False) -> np.ndarray:
        start = len(self.parent)
        self.parent.extend(range(start, start + count))
        atoms = np.arange(start, start + count, dtype=np.int64)
        if fixed:
            self.fix(atoms)
        return atoms

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(int(a)), self.find(int(b))
        if ra != rb:  # the smaller root wins, so FIXED (0) always stays a root
            self.parent[max(ra, rb)] = min(ra, rb)

    def fix(self, atoms) -> None:
        for a in atoms:
            self.union(FIXED, a)

    def channels(self, name: str) -> int:
        shape = self.graph.tensor(name).shape
        return int(shape[-1]) if shape else 1

    def run(self) -> ChannelGraph:
        for name in self.graph.inputs:
            self.atoms[name] = self.new(self.channels(name), fixed=True)
        for index, op in enumerate(self.graph.ops):
            handler = _HANDLERS.get(op.kind, _opaque)
            self.atoms[op.outputs[0]] = handler(self, index, op)
        for name in self.graph.outputs:
            self.fix(self.atoms[name])
        root = np.array([self.find(a) for a in range(len(self.parent))], np.int64)
        result = ChannelGraph(atoms=self.atoms, spaces=self.spaces, root=root)
        result.groups = _groups(result)
        return result

    def activation_inputs(self, op: Op) -> list[str]:
        return [n for n in op.inputs if n is not None and not self.graph.tensor(n).is_const]

    def of(self, name: str) -> np.ndarray:
        """The atoms of an activation; a constant operand gets fixed ones."""
        if self.graph.tensor(name).is_const:
            return self.new(self.channels(name), fixed=True)
        return self.atoms[name]


def analyse(graph: Graph) -> ChannelGraph:
    """The channel atoms, classes and groups of an integer graph."""
    return _Builder(graph).run()


def _groups(cg: ChannelGraph) -> list[list[int]]:
    """Connected components of spaces, two spaces being joined when a class spans both."""
    owner: dict[int, int] = {}
    link = list(range(len(cg.spaces)))

    def find(i: int) -> int:
        while link[i] != i:
            i = link[i]
        return i

    for i, space in enumerate(cg.spaces):
        for a in space.atoms:
            r = int(cg.root[a])
            if r == FIXED:
                continue
            if r in owner:
                a_root, b_root = find(owner[r]), find(i)
                link[max(a_root, b_root)] = min(a_root, b_root)
            else:
                owner[r] = i
    components: dict[int, list[int]] = {}
    for i in range(len(cg.spaces)):
        components.setdefault(find(i), []).append(i)
    return [members for members in components.values() if cg.free_classes(members)]


# ---- one handler per op kind: returns the atoms of the op's output ----

def _opaque(b: _Builder, index: int, op: Op) -> np.ndarray:
    """An op that mixes channels (softmax, a reduction over channels) or is not understood."""
    for name in b.activation_inputs(op):
        b.fix(b.atoms[name])
    return b.new(b.channels(op.outputs[0]), fixed=True)


def _space(b: _Builder, index: int, op: Op) -> np.ndarray:
    x = op.inputs[0]
    if op.kind == "FULLY_CONNECTED" and b.graph.tensor(op.inputs[1]).shape[1] % len(b.atoms[x]):
        b.fix(b.atoms[x])  # rows that split a channel axis: keep the input whole
    atoms = b.new(b.channels(op.outputs[0]))
    b.spaces.append(Space(op_index=index, atoms=atoms))
    return atoms


def _depthwise(b: _Builder, index: int, op: Op) -> np.ndarray:
    return np.repeat(b.atoms[op.inputs[0]], op.attrs.get("depth_multiplier", 1))


def _same(b: _Builder, index: int, op: Op) -> np.ndarray:
    return b.atoms[op.inputs[0]]


def _reshape(b: _Builder, index: int, op: Op) -> np.ndarray:
    """Channels stay innermost in memory; an output last axis of whole input channel runs tiles."""
    atoms, last = b.atoms[op.inputs[0]], b.channels(op.outputs[0])
    if last % len(atoms):
        return _opaque(b, index, op)
    return np.tile(atoms, last // len(atoms))


def _mean(b: _Builder, index: int, op: Op) -> np.ndarray:
    rank = len(b.graph.tensor(op.inputs[0]).shape)
    if (rank - 1) in {a % rank for a in op.attrs["axis"]}:
        return _opaque(b, index, op)
    return b.atoms[op.inputs[0]]


def _pad(b: _Builder, index: int, op: Op) -> np.ndarray:
    before, after = op.attrs["paddings"][-1]
    return np.concatenate([b.new(before, fixed=True), b.atoms[op.inputs[0]], b.new(after, fixed=True)])


def _join(b: _Builder, arrays: list[np.ndarray]) -> np.ndarray:
    """Position by position, the atoms of same-length arrays become one class."""
    first = arrays[0]
    for other in arrays[1:]:
        for x, y in zip(first, other):
            b.union(x, y)
    return first


def _elementwise(b: _Builder, index: int, op: Op) -> np.ndarray:
    """ADD / MUL. A constant operand is sliced with its channels; a size-1 one broadcasts."""
    width = b.channels(op.outputs[0])
    arrays = [b.atoms[n] for n in b.activation_inputs(op)]
    for atoms in arrays:
        if len(atoms) != width:
            b.fix(atoms)
    full = [atoms for atoms in arrays if len(atoms) == width]
    if not full:
        return b.new(width, fixed=True)
    return _join(b, full)


def _concatenation(b: _Builder, index: int, op: Op) -> np.ndarray:
    rank = len(b.graph.tensor(op.outputs[0]).shape)
    arrays = [b.of(n) for n in op.inputs]
    if op.attrs["axis"] % rank == rank - 1:
        return np.concatenate(arrays)
    return _join(b, arrays)


_HANDLERS = {
    "CONV_2D": _space,
    "FULLY_CONNECTED": _space,
    "DEPTHWISE_CONV_2D": _depthwise,
    **{kind: _same for kind in CHANNELWISE_OPS},
    "RESHAPE": _reshape,
    "SQUEEZE": _reshape,
    "MEAN": _mean,
    "PAD": _pad,
    "ADD": _elementwise,
    "MUL": _elementwise,
    "CONCATENATION": _concatenation,
}
