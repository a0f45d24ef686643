"""RNN+HN against the task-inference baselines on GridNavi (NeurIPS 2023, Figure 5 and appendix Figure 12).

    python benchmarks/task_inference_comparison.py --frames 5e5 --seeds 0 1 2 --jobs 2

Trains each method from its zoo entry (RNN+HN; RNN+HN with the reference's clipped Huber value loss; TI++HN; TI;
TI Naive; VI+HN and VI, VariBAD) for --frames frames per seed, --jobs processes at a time with one torch thread
each, through benchmarks/learning_curve.py, and prints per method the final mean deterministic meta-episode return
over seeds with its 68% bootstrap CI over seeds, the per-seed returns and the adaptation curve (mean return of each
inner episode, averaged over seeds). Results go to --out as JSON lines; runs already finished there are skipped, so
an interrupted comparison continues where it stopped. Expected shape: TI++HN the strongest task-inference method;
RNN+HN at least as good. On GridNavi the Bayes-optimal adaptation curve is printed below the table.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
from runs import final_records, run_learning

from sb3_hypernet.evaluation import bootstrap_ci

CONFIGS = Path(__file__).resolve().parents[1] / "zoo_configs"
#: label -> (display name, zoo config, rl_zoo3 algorithm, hyperparameter overrides as zoo's -params)
METHODS = {
    "rnn_hn": ("RNN+HN", "rnn_hn.yml", "ppo_lstm", []),
    "rnn_hn_huber": ("RNN+HN, reference value loss", "rnn_hn.yml", "meta_ppo_lstm", ["value_loss:'huber_clipped'"]),
    "ti_plus_plus_hn": ("TI++HN", "ti_plus_plus_hn.yml", "meta_ppo_lstm", []),
    "ti": ("TI", "ti.yml", "meta_ppo_lstm", []),
    "ti_naive": ("TI Naive", "ti_naive.yml", "meta_ppo_lstm", []),
    "vi_hn": ("VI+HN", "vi_hn.yml", "meta_ppo_lstm", []),
    "vi": ("VI", "vi.yml", "meta_ppo_lstm", []),
}
#: Bayes-optimal return of each inner episode (VariBAD's exploration of the 5x5 grid; issue 9), per env.
BAYES_OPTIMAL = {"GridNavi-v0": [4.0, 11.07, 11.07, 11.07]}

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
parser.add_argument("--env", default="GridNavi-v0")
parser.add_argument("--frames", type=float, default=5e5, help="training frames per run")
parser.add_argument("--checkpoints", type=float, nargs="*", default=[1e5, 2.5e5, 5e5], help="frames to evaluate at")
parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
parser.add_argument("--n-eval", type=int, default=100, help="meta-episodes per evaluation")
parser.add_argument("--jobs", type=int, default=2, help="processes at a time (one torch thread each)")
parser.add_argument("--out", default="benchmarks/results/gridnavi_task_inference.jsonl", help="JSON lines of results")
args = parser.parse_args()

out = Path(args.out)
out.parent.mkdir(parents=True, exist_ok=True)
out.touch()
finished = {(r["method"], r["seed"]) for r in final_records(out, args.frames) if r.get("env") == args.env}
runs = []
for label in args.methods:
    _, conf, algo, overrides = METHODS[label]
    for seed in args.seeds:
        if (label, seed) in finished:
            continue
        arguments = ["--method", label, "--conf-file", str(CONFIGS / conf), "--algo", algo, "--env", args.env]
        arguments += ["--frames", str(args.frames), "--seed", str(seed), "--n-eval", str(args.n_eval)]
        arguments += ["--checkpoints", *map(str, [c for c in args.checkpoints if c <= args.frames])]
        if overrides:
            arguments += ["--hyperparams", *overrides]
        runs.append(arguments)
print(f"{len(runs)} runs to do ({len(finished)} already in {out})", flush=True)
codes = run_learning(runs, args.jobs, out)

finals: dict[str, dict[int, dict]] = defaultdict(dict)
for record in final_records(out, args.frames):
    if record.get("env") == args.env and record["method"] in args.methods:
        finals[record["method"]][record["seed"]] = record
print(f"\n{args.env}, {int(args.frames)} frames per run, seeds {args.seeds}; results in {out}")
print(f"{'method':<30}{'return':>8}  {'68% CI over seeds':<18}  {'per seed':<24} adaptation curve (inner episodes)")
for label in args.methods:
    runs_done = dict(sorted(finals.get(label, {}).items()))  # by seed
    values = [r["meta_return"]["mean"] for r in runs_done.values() if not r.get("diverged")]
    name = METHODS[label][0]
    if not values:
        print(f"{name:<30}{'no finished run':>8}")
        continue
    low, high = bootstrap_ci(np.array(values)) if len(values) > 1 else (float("nan"), float("nan"))
    curve = np.mean([[s["mean"] for s in r["inner_returns"]] for r in runs_done.values() if not r.get("diverged")], 0)
    per_seed = " ".join(f"{v:.2f}" for v in values)
    diverged = sum(1 for r in runs_done.values() if r.get("diverged"))
    print(
        f"{name:<30}{np.mean(values):>8.2f}  [{low:6.2f}, {high:6.2f}]    {per_seed:<24} "
        f"{' '.join(f'{v:.2f}' for v in curve)}" + (f"  ({diverged} diverged)" if diverged else "")
    )
if args.env in BAYES_OPTIMAL:
    optimal = BAYES_OPTIMAL[args.env]
    print(f"{'Bayes-optimal':<30}{sum(optimal):>8.2f}  {'':<18}    {'':<24} {' '.join(f'{v:.2f}' for v in optimal)}")
if any(codes):
    print(f"{sum(1 for c in codes if c)} run(s) exited with an error (diverged runs exit with 1)")
