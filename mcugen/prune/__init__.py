"""Structured pruning: whole channels removed with graph surgery (the `prune` pass's machinery).

- `channels`: which channels must go together (residual groups, concatenations, flattens);
- `importance`: how much each channel matters (l1, l2, apoz, mean, bn);
- `plan`: the `--prune` specification and which channels each group loses;
- `surgery`: the rewritten graph, with removed channels' mean contribution folded into biases;
- `pruner`: the above for one model, plus per-layer costs and fidelity for the report;
- `auto`: how far to prune, jointly with `assign_bits`, to meet flash, RAM and MAC budgets.
"""
