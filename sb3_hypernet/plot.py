"""The papers' figures and tables from a sweep study (:mod:`sb3_hypernet.sweep`).

    python -m sb3_hypernet.plot --storage logs/sweeps/gridnavi.log --study-name gridnavi --out figures/gridnavi

Written to ``--out`` (PNG and PDF for each figure):

- ``learning_curves``: per env, each method's mean deterministic meta-episode return over seeds at its best learning
  rate against frames, with 68% bootstrap CIs over seeds (the papers' error bar; ``--confidence``), and the
  benchmark's known reference (GridNavi's Bayes-optimal 37.2, MC-LS's optimum) as a dashed line;
- ``adaptation``: per env, the return of each inner episode of a meta-episode at the last checkpoint (the adaptation
  curve) as bars, same runs and CIs;
- ``aggregate``: across envs, IQM and mean of the final returns, normalised by each env's reference where it has one,
  with stratified bootstrap CIs, and the performance profile (rliable, Agarwal et al. 2021);
- ``learning_rates.md``: per method and env, the mean final return of every learning rate, the best one marked (the
  papers pick the learning rate with the best mean final return over seeds);
- ``figures.json``: the numbers each figure shows.

The best learning rate and every CI come from the completed runs of the study; runs still going are left out.
All bootstrap CIs are rliable's (percentile bootstrap, seeded).
"""

from __future__ import annotations

import argparse
import sys

import optuna

from sb3_hypernet.experiments.arguments import probability
from sb3_hypernet.experiments.figures import CONFIDENCE, make_figures
from sb3_hypernet.experiments.sweep import open_storage


#: The papers' error bar: 68% CIs over seeds.
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--storage", required=True, help="the sweep's journal file or database URL")
    parser.add_argument("--study-name", required=True)
    parser.add_argument("--out", required=True, help="folder for the figures and tables")
    parser.add_argument(
        "--confidence", type=probability, default=CONFIDENCE, help="CI size (default 0.68, the papers')"
    )
    args = parser.parse_args(argv)
    try:
        study = optuna.load_study(study_name=args.study_name, storage=open_storage(args.storage))
    except KeyError:
        parser.error(f"no study {args.study_name!r} in {args.storage}")
    data = make_figures(study, args.out, args.confidence)
    print(data["table"])
    print("\n".join(data["files"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
