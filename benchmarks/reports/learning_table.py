"""Learning curves written by benchmarks/learning/learning_curve.py --out as a table: a row per checkpoint, a column per
method.

    python benchmarks/reports/learning_table.py benchmarks/results/gridnavi_learning_curves.jsonl --env GridNavi-v0

Each cell is the mean deterministic meta-episode return over the seeds that reached that checkpoint. With several
seeds the cell gives the 68% bootstrap CI over seeds and the seed count; with one seed, the 68% bootstrap CI over
the evaluation tasks of that one run (a different kind of interval: it says nothing about seed-to-seed spread).
Markdown, so it can be pasted into the README or written to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `python benchmarks/<kind>/<x>.py`
from benchmarks.common import new_parser, read_records
from sb3_hypernet.common.evaluation import bootstrap_ci


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = new_parser(__doc__)
    parser.add_argument("results", type=Path, help="JSON lines of benchmarks/learning/learning_curve.py --out")
    parser.add_argument("--env", default="GridNavi-v0")
    parser.add_argument("--methods", nargs="+", default=None, help="methods (columns) to show, in order")
    parser.add_argument(
        "--inner", action="store_true", help="add each cell's adaptation curve (mean inner-episode returns)"
    )
    return parser


def cell(runs: dict[int, dict] | None, inner: bool) -> str:
    """One table cell: the mean over seeds of one method at one checkpoint, with its CI (and adaptation curve)."""
    if not runs:
        return ""
    values = [runs[seed]["meta_return"]["mean"] for seed in sorted(runs)]
    curve = ""
    if inner:
        means = np.mean([[s["mean"] for s in runs[seed]["inner_returns"]] for seed in sorted(runs)], axis=0)
        curve = "; inner " + ", ".join(f"{v:.2f}" for v in means)
    if len(values) == 1:
        stats = next(iter(runs.values()))["meta_return"]
        return f"{values[0]:.2f} [{stats['ci_low']:.2f}, {stats['ci_high']:.2f}] (1 seed, CI over tasks{curve})"
    low, high = bootstrap_ci(np.array(values))
    per_seed = ", ".join(f"{v:.1f}" for v in values)
    return f"{np.mean(values):.2f} [{low:.2f}, {high:.2f}] ({len(values)} seeds: {per_seed}{curve})"


def main() -> None:
    args = build_parser().parse_args()
    # (method, checkpoint) -> seed -> record; a checkpoint is evaluated at the first rollout boundary at or after it.
    cells: dict[tuple[str, float], dict[int, dict]] = defaultdict(dict)
    for record in read_records(args.results):
        if record["env"] != args.env or record.get("diverged"):
            continue
        requested = [c for c in record.get("checkpoints") or [record["frames"]] if c <= record["frames"]]
        checkpoint = max(requested) if requested else record["frames"]
        cells[(record["method"], checkpoint)][record["seed"]] = record

    methods = args.methods or sorted({method for method, _ in cells})
    checkpoints = sorted({checkpoint for _, checkpoint in cells})
    learning_rates = {
        m: next(r["learning_rate"] for (k, _), rs in cells.items() if k == m for r in rs.values()) for m in methods
    }
    print(f"| frames | {' | '.join(f'{m} (lr {learning_rates[m]:g})' for m in methods)} |")
    print(f"|---|{'---|' * len(methods)}")
    for checkpoint in checkpoints:
        mantissa, exponent = f"{checkpoint:.2e}".split("e")
        row = " | ".join(cell(cells.get((m, checkpoint)), args.inner) for m in methods)
        print(f"| {float(mantissa):g}e{int(exponent)} | {row} |")


if __name__ == "__main__":
    main()
