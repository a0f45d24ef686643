"""Short learning-rate sweep over the SPEC 4 grid on a Grid-World, one process per (learning rate, seed).

    python benchmarks/gridworld_lr_sweep.py --method rnn_hn --frames 2e5 --jobs 2

Runs benchmarks/gridworld_learning.py for each learning rate and seed (--jobs at a time, one torch thread
each) and prints a table of final mean deterministic meta-episode returns, best first.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--method", default="rnn_hn")
parser.add_argument("--env", default="GridNavi-v0")
parser.add_argument("--frames", type=float, default=2e5)
parser.add_argument("--learning-rates", type=float, nargs="+", default=[3e-3, 1e-3, 3e-4, 1e-4, 3e-5])
parser.add_argument("--seeds", type=int, nargs="+", default=[0])
parser.add_argument("--n-eval", type=int, default=100)
parser.add_argument("--jobs", type=int, default=2, help="processes at a time (one torch thread each)")
parser.add_argument("--out", default=None, help="JSON lines of every checkpoint (default: a temporary file)")
args = parser.parse_args()

out = Path(args.out or tempfile.mkstemp(suffix=".jsonl")[1])
script = Path(__file__).with_name("gridworld_learning.py")
runs = [(lr, seed) for lr in args.learning_rates for seed in args.seeds]
running: list[subprocess.Popen] = []
for lr, seed in runs:
    if len(running) >= args.jobs:
        running.pop(0).wait()
    command = [sys.executable, str(script), "--method", args.method, "--env", args.env, "--frames", str(args.frames)]
    command += ["--learning-rate", str(lr), "--seed", str(seed), "--n-eval", str(args.n_eval)]
    command += ["--threads", "1", "--out", str(out)]
    running.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))
for process in running:
    process.wait()

final: dict[float, list[float]] = defaultdict(list)
for line in out.read_text().splitlines():
    record = json.loads(line)
    if record["method"] == args.method and record["frames"] >= args.frames:
        final[record["learning_rate"]].append(record["meta_return"]["mean"])
print(f"{args.method} on {args.env}, {int(args.frames)} frames, seeds {args.seeds}; results in {out}")
print(f"{'learning rate':>14} {'mean meta return':>17}  per seed")
for lr, values in sorted(final.items(), key=lambda item: -np.mean(item[1])):
    print(f"{lr:>14g} {np.mean(values):>17.2f}  {' '.join(f'{v:.2f}' for v in values)}")
