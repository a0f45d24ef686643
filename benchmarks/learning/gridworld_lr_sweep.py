"""Short learning-rate sweep over the paper's learning-rate grid on a Grid-World, one process per (learning rate, seed).

    python benchmarks/learning/gridworld_lr_sweep.py --method rnn_hn --frames 2e5 --jobs 2

Runs benchmarks/learning/learning_curve.py for each learning rate and seed (--jobs at a time, one torch thread
each) and prints a table of final mean deterministic meta-episode returns, best first.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `python benchmarks/<kind>/<x>.py`
from benchmarks.common import add_sweep_options, final_records, new_parser, run_learning, sweep_output


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = new_parser(__doc__)
    parser.add_argument("--method", default="rnn_hn")
    parser.add_argument("--env", default="GridNavi-v0")
    parser.add_argument("--frames", type=float, default=2e5)
    parser.add_argument("--learning-rates", type=float, nargs="+", default=[3e-3, 1e-3, 3e-4, 1e-4, 3e-5])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    add_sweep_options(parser)
    return parser


def main() -> None:
    args = build_parser().parse_args()
    out = sweep_output(args.out)
    common = ["--method", args.method, "--env", args.env, "--frames", str(args.frames), "--n-eval", str(args.n_eval)]
    run_learning(
        [[*common, "--learning-rate", str(lr), "--seed", str(s)] for lr in args.learning_rates for s in args.seeds],
        args.jobs,
        out,
    )

    final: dict[float, list[float]] = defaultdict(list)
    for record in final_records(out, args.frames):
        if record["method"] == args.method:
            final[record["learning_rate"]].append(
                float("nan") if record.get("diverged") else record["meta_return"]["mean"]
            )
    print(
        f"{args.method} on {args.env}, {int(args.frames)} frames, seeds {args.seeds}; results in {out} (nan: diverged)"
    )
    print(f"{'learning rate':>14} {'mean meta return':>17}  per seed")
    for lr, values in sorted(final.items(), key=lambda item: -np.nan_to_num(np.mean(item[1]), nan=-np.inf)):
        print(f"{lr:>14g} {np.mean(values):>17.2f}  {' '.join(f'{v:.2f}' for v in values)}")


if __name__ == "__main__":
    main()
