"""The README's quick-start training with torch's default threads and with one thread: wall time and frames/s.

    python benchmarks/speed/quickstart_threads.py --frames 30000 --repeats 2 --label busy \\
        --out benchmarks/results/quickstart_threads.jsonl

Runs ``python -m sb3_hypernet.train --algo meta_ppo_lstm --env GridNavi-v0 --gym-packages envs --conf-file
zoo_configs/rnn_hn.yml -n FRAMES`` in a fresh process per run, alternating the two settings (``--num-threads 1``
or none), in a temporary log folder, and reads the training frames/s that rl_zoo3 logs last (``time/fps``). The
machine's state (quiet, or other jobs running) is the caller's to arrange and to name with ``--label``; the
median of the repeats is printed and appended to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `python benchmarks/<kind>/<x>.py`
from benchmarks.common import REPO_ROOT, ZOO_CONFIGS, append_record, new_parser


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = new_parser(__doc__)
    parser.add_argument("--frames", type=int, default=30000, help="training frames per run")
    parser.add_argument("--repeats", type=int, default=2, help="runs per setting (the median is reported)")
    parser.add_argument("--label", default="", help="the machine's state during the runs, e.g. quiet or busy")
    parser.add_argument("--out", default=None, help="append one JSON line per setting to this file")
    return parser


def train_once(frames: int, threads: int | None) -> tuple[float, float]:
    """(wall seconds, last logged training frames/s) of one quick-start training."""
    command = [sys.executable, "-m", "sb3_hypernet.train", "--algo", "meta_ppo_lstm", "--env", "GridNavi-v0"]
    command += ["--gym-packages", "envs", "--conf-file", str(ZOO_CONFIGS / "rnn_hn.yml"), "-n", str(frames)]
    command += ["--seed", "1", "--log-interval", "1"]
    if threads:
        command += ["--num-threads", str(threads)]
    environment = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        result = subprocess.run(
            [*command, "-f", folder], capture_output=True, text=True, cwd=REPO_ROOT, env=environment, check=True
        )
        wall = time.perf_counter() - start
    fps = [float(value) for value in re.findall(r"\|\s*fps\s*\|\s*([\d.]+)", result.stdout)]
    return wall, fps[-1] if fps else float("nan")


def main() -> None:
    args = build_parser().parse_args()
    runs: dict[str, list[tuple[float, float]]] = {"default threads": [], "--num-threads 1": []}
    for _ in range(args.repeats):
        for name, threads in (("default threads", None), ("--num-threads 1", 1)):
            runs[name].append(train_once(args.frames, threads))
    import torch

    print(f"{args.frames} frames of the quick start, {args.repeats} runs each ({args.label or 'state not named'});")
    print(f"torch {torch.__version__}, default threads here: {torch.get_num_threads()}, {os.cpu_count()} cores")
    print(f"{'setting':<18}{'wall s':>10}{'frames/s':>10}")
    for name, values in runs.items():
        wall = statistics.median(v[0] for v in values)
        fps = statistics.median(v[1] for v in values)
        print(f"{name:<18}{wall:>10.1f}{fps:>10.0f}")
        if args.out:
            record = dict(setting=name, label=args.label, frames=args.frames, repeats=args.repeats, wall_s=wall)
            append_record(args.out, dict(record, fps=fps, default_threads=torch.get_num_threads()))


if __name__ == "__main__":
    main()
