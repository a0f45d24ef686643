"""Hypernetwork initialisation ablation on GridNavi (CoRL 2022, Table 1), several seeds per scheme.

    python benchmarks/learning/init_ablation.py --frames 2e5 --seeds 0 1 2 --jobs 2

Trains RNN+HN with each ``hyper_init`` (configs in zoo_configs/init_ablation/) and, for reference, the standard
architecture RNN+S (zoo_configs/rnn_s.yml), then prints the final mean deterministic meta-episode return of each
with a 68% bootstrap CI over seeds, best first. A run whose parameters became NaN counts as diverged. With
``--schemes bias --learning-rate 3e-3`` it is the stability check at the sweep's largest learning rate.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `python benchmarks/<kind>/<x>.py`
from benchmarks.common import ZOO_CONFIGS, add_sweep_options, final_records, new_parser, run_learning, sweep_output
from sb3_hypernet.common.evaluation import bootstrap_ci
from sb3_hypernet.common.generated_layers import HYPER_INITS


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = new_parser(__doc__)
    parser.add_argument("--schemes", nargs="+", default=[*HYPER_INITS, "standard"], help="hyper_init names, 'standard'")
    parser.add_argument("--env", default="GridNavi-v0")
    parser.add_argument("--frames", type=float, default=2e5, help="training frames per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--learning-rate", type=float, default=None, help="override the configs' learning rate")
    add_sweep_options(parser)
    return parser


def main() -> None:
    args = build_parser().parse_args()
    out = sweep_output(args.out)
    runs = []
    for scheme in args.schemes:
        if scheme == "standard":
            conf = ZOO_CONFIGS / "rnn_s.yml"
        else:
            conf = ZOO_CONFIGS / "init_ablation" / f"rnn_hn_{scheme}.yml"
        for seed in args.seeds:
            arguments = ["--method", scheme, "--conf-file", str(conf), "--env", args.env, "--frames", str(args.frames)]
            arguments += ["--seed", str(seed), "--n-eval", str(args.n_eval)]
            if args.learning_rate is not None:
                arguments += ["--learning-rate", str(args.learning_rate)]
            runs.append(arguments)
    codes = run_learning(runs, args.jobs, out)

    finals: dict[str, list[float]] = defaultdict(list)
    diverged: dict[str, int] = defaultdict(int)
    for record in final_records(out, args.frames):
        if record.get("diverged"):
            diverged[record["method"]] += 1
        else:
            finals[record["method"]].append(record["meta_return"]["mean"])
    lr = "config" if args.learning_rate is None else f"{args.learning_rate:g}"
    print(f"{args.env}, {int(args.frames)} frames per run, seeds {args.seeds}, learning rate {lr}; results in {out}")
    print(f"{'scheme':<12}{'mean':>8}  {'68% CI over seeds':<18} {'diverged':>8}  per seed")
    rows = []
    for scheme in args.schemes:
        values = finals.get(scheme, [])
        mean = float(np.mean(values)) if values else float("nan")
        low, high = bootstrap_ci(values) if values else (float("nan"), float("nan"))
        rows.append((mean, scheme, low, high, values))
    for mean, scheme, low, high, values in sorted(rows, key=lambda row: -np.nan_to_num(row[0], nan=-np.inf)):
        per_seed = " ".join(f"{v:.2f}" for v in values)
        print(f"{scheme:<12}{mean:>8.2f}  [{low:6.2f}, {high:6.2f}]   {diverged[scheme]:>8}  {per_seed}")
    if any(codes):
        print(f"{sum(1 for c in codes if c)} run(s) exited with an error (diverged runs exit with 1)")


if __name__ == "__main__":
    main()
