"""Factorised vs materialised generated layers: time and peak memory of RNN+HN's actor and critic networks.

    python benchmarks/speed/generated_layers.py --batch-sizes 16 240 960

For each mode and batch size: median time of a forward pass and of a forward + backward pass through the
generated actor and critic (state embedding 256 -> 256 -> 128 -> out, latent embedding 25, Bias-HyperInit), and
the peak memory that pass adds (CUDA: max_memory_allocated; CPU: growth of the process's peak RSS, each mode in a
fresh process). Batch 16 is a rollout step of the Grid-World settings, 240 a training minibatch.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import sys
import time
from pathlib import Path

import torch as th

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `python benchmarks/<kind>/<x>.py`
from benchmarks.common import add_threads_option, new_parser, set_threads
from sb3_hypernet.common.generated_layers import GeneratedMLP


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = new_parser(__doc__)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 240, 960])
    parser.add_argument("--repeats", type=int, default=20)
    add_threads_option(parser)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--width", type=int, default=256, help="state embedding size")
    parser.add_argument("--cond", type=int, default=25, help="latent embedding size")
    parser.add_argument("--actions", type=int, default=5)
    return parser


def measure(mode: str, batch: int, args: argparse.Namespace, queue: mp.Queue) -> None:
    """In a fresh process (its peak memory its own): median forward and forward + backward times, and peak MB."""
    set_threads(args.threads)
    th.manual_seed(0)
    device = th.device(args.device)
    actor = GeneratedMLP([args.width, 256, 128, args.actions], args.cond, "categorical", mode=mode).to(device)
    critic = GeneratedMLP([args.width, 256, 128, 1], args.cond, "critic", mode=mode).to(device)
    x = th.randn(batch, args.width, device=device, requires_grad=True)
    z = th.randn(batch, args.cond, device=device, requires_grad=True)

    def step(backward: bool) -> float:
        if device.type == "cuda":
            th.cuda.synchronize()
        start = time.perf_counter()
        loss = actor(x, z).sum() + critic(x, z).sum()
        if backward:
            loss.backward()
        if device.type == "cuda":
            th.cuda.synchronize()
        return time.perf_counter() - start

    for param in [*actor.parameters(), *critic.parameters(), x, z]:
        param.grad = th.zeros_like(param)  # gradient buffers exist before the measured pass
    # Peak memory of the first forward + backward pass (the process's high-water mark is fresh).
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device.type == "cuda":
        th.cuda.reset_peak_memory_stats()
        base = th.cuda.memory_allocated()
    step(True)
    if device.type == "cuda":
        peak_mb = (th.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    with th.no_grad():
        forward = statistics.median(step(False) for _ in range(args.repeats))
    both = statistics.median(step(True) for _ in range(args.repeats))
    queue.put((forward, both, peak_mb, th.get_num_threads()))


def main() -> None:
    args = build_parser().parse_args()
    context = mp.get_context("spawn")
    results = {}
    for batch in args.batch_sizes:
        for mode in ("factorized", "materialized"):
            queue = context.Queue()
            process = context.Process(target=measure, args=(mode, batch, args, queue))
            process.start()
            results[mode, batch] = queue.get()
            process.join()
    threads = results[next(iter(results))][3]
    print(f"device {args.device}, torch {th.__version__}, threads {threads}, median of {args.repeats}")
    print(f"{'batch':>6} {'mode':<13}{'forward ms':>11}{'fwd+bwd ms':>12}{'peak MB':>9}{'fwd+bwd x':>11}")
    for batch in args.batch_sizes:
        reference = results["factorized", batch][1]
        for mode in ("factorized", "materialized"):
            forward, both, peak, _ = results[mode, batch]
            print(
                f"{batch:>6} {mode:<13}{forward * 1e3:>11.2f}{both * 1e3:>12.2f}{peak:>9.1f}{both / reference:>11.2f}"
            )


if __name__ == "__main__":  # spawned measuring processes import this module without running main()
    main()
