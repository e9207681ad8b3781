"""Min-cost bipartite matching of the 3D-lane F-score, on OR-Tools' min-cost-flow solver.

The official F-score matches lanes with `ortools` SimpleMinCostFlow on a fixed graph (source → GT →
prediction → sink, arcs in row-major order). Integer costs tie often, and a different solver (e.g.
scipy's Hungarian) may pick a different, equally cheap matching and change the score, so we build
exactly the same graph for exactly the same solver. The arcs are added in one vectorised call.
"""

from __future__ import annotations

import numpy as np
from ortools.graph.python import min_cost_flow


def solve_min_cost_assignment(cost: np.ndarray) -> list[tuple[int, int, int]]:
    """Matches min(G, P) pairs of the integer (G, P) cost matrix at minimum total cost.

    Args:
        cost: (G, P) integer costs; every pair may be matched.

    Returns:
        (gt index, prediction index, cost) of each matched pair, in arc order.
    """
    num_gt, num_pred = cost.shape
    if num_gt == 0 or num_pred == 0:
        return []
    sink = num_gt + num_pred + 1
    gt_nodes = np.arange(1, num_gt + 1)
    pred_nodes = np.arange(num_gt + 1, num_gt + num_pred + 1)
    tails = np.concatenate([np.zeros(num_gt, int), np.repeat(gt_nodes, num_pred), pred_nodes])
    heads = np.concatenate([gt_nodes, np.tile(pred_nodes, num_gt), np.full(num_pred, sink)])
    capacities = np.ones(len(tails), dtype=np.int64)
    costs = np.concatenate(
        [np.zeros(num_gt, int), cost.reshape(-1).astype(np.int32), np.zeros(num_pred, int)]
    ).astype(np.int64)
    solver = min_cost_flow.SimpleMinCostFlow()
    supplies = np.zeros(sink + 1, dtype=np.int64)
    supplies[0], supplies[sink] = min(num_gt, num_pred), -min(num_gt, num_pred)
    pair_arcs = np.arange(num_gt, num_gt + num_gt * num_pred)
    if hasattr(solver, 'add_arcs_with_capacity_and_unit_cost'):  # vectorised API (OR-Tools ≥ 9.8)
        solver.add_arcs_with_capacity_and_unit_cost(tails, heads, capacities, costs)
        solver.set_nodes_supplies(np.arange(sink + 1), supplies)
    else:
        for arc in zip(tails.tolist(), heads.tolist(), capacities.tolist(), costs.tolist()):
            solver.add_arc_with_capacity_and_unit_cost(*arc)
        for node, supply in enumerate(supplies.tolist()):
            solver.set_node_supply(node, supply)
    if solver.solve() != solver.OPTIMAL:
        return []
    if hasattr(solver, 'flows'):
        flows = solver.flows(pair_arcs)
    else:
        flows = np.array([solver.flow(int(a)) for a in pair_arcs])
    used = pair_arcs[flows > 0]
    rows, cols = np.divmod(used - num_gt, num_pred)
    return [(int(i), int(j), int(costs[a])) for i, j, a in zip(rows, cols, used)]
