"""Time to cut and pad one update's minibatches: sb3-contrib's recurrent buffer against the sequence buffer.

    python benchmarks/speed/rollout_buffer.py --n-envs 16 256 1024 4096 --threads 1
    python benchmarks/speed/rollout_buffer.py --n-envs 256 1024 4096 --device cuda   # on a GPU machine

The buffers hold a GridNavi rollout's shapes (60 steps per env, meta-episode observations, a 256-unit recurrent
state, a meta-episode start every 60 steps) and are asked for one update's minibatches: --epochs passes of get()
with 4 minibatches or minibatches of --batch-size frames. Rows give the median over --repeats interleaved
measurements of the time per update (the first pass, which also moves the rollout to the device, included) and the
ratio stock / sequence.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch as th
from gymnasium import spaces
from sb3_contrib.common.recurrent.buffers import RecurrentDictRolloutBuffer
from sb3_contrib.common.recurrent.type_aliases import RNNStates

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `python benchmarks/<kind>/<x>.py`
from benchmarks.common import add_threads_option, new_parser, set_threads
from sb3_hypernet.common.buffers import SequenceDictRolloutBuffer

SPACE = spaces.Dict(
    {
        "obs": spaces.Box(0.0, 4.0, (2,), np.float32),
        "prev_action": spaces.Box(0.0, 1.0, (5,), np.float32),
        "prev_reward": spaces.Box(-np.inf, np.inf, (1,), np.float32),
        "episode_done": spaces.Box(0.0, 1.0, (1,), np.float32),
    }
)
ACTIONS = spaces.Discrete(5)
HIDDEN = 256


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = new_parser(__doc__)
    parser.add_argument("--n-envs", type=int, nargs="+", default=[16, 256, 1024])
    parser.add_argument("--n-steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=None, help="frames per minibatch (default: 4 minibatches)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    add_threads_option(parser)
    return parser


def filled(buffer_cls: type, n_envs: int, n_steps: int, device: str) -> RecurrentDictRolloutBuffer:
    """A buffer of ``buffer_cls`` holding a random rollout with GridNavi's shapes."""
    rng = np.random.default_rng(0)
    shape = (n_steps, 1, n_envs, HIDDEN)
    buffer = buffer_cls(n_steps, SPACE, ACTIONS, shape, device, 0.95, 0.95, n_envs)
    for step in range(n_steps):
        obs = {key: rng.random((n_envs, *space.shape), dtype=np.float32) for key, space in SPACE.spaces.items()}
        state = th.as_tensor(rng.random((1, n_envs, HIDDEN), dtype=np.float32), device=device)
        buffer.add(
            obs,
            rng.integers(0, 5, (n_envs, 1)),
            rng.random(n_envs, dtype=np.float32),
            np.full(n_envs, step % 60 == 0),
            th.zeros((n_envs, 1), device=device),
            th.zeros(n_envs, device=device),
            lstm_states=RNNStates((state, state), (state, state)),
        )
    buffer.compute_returns_and_advantage(th.zeros((n_envs, 1), device=device), np.zeros(n_envs, bool))
    return buffer


def seconds_per_update(buffer: RecurrentDictRolloutBuffer, batch_size: int, epochs: int, device: str) -> float:
    """Wall time of ``epochs`` passes over the minibatches (first use of this rollout included)."""
    began = time.perf_counter()
    for _ in range(epochs):
        for batch in buffer.get(batch_size):
            last = batch.observations["obs"]
    if device.startswith("cuda"):
        th.cuda.synchronize()
    del last
    return time.perf_counter() - began


def main() -> None:
    args = build_parser().parse_args()
    set_threads(args.threads)
    print(
        f"device {args.device}, torch threads {th.get_num_threads()}, {args.n_steps} steps per env, {args.epochs} "
        f"epochs, median of {args.repeats}"
    )
    print(f"{'n_envs':>7} {'minibatch':>9} {'sb3-contrib ms':>15} {'sequence ms':>12} {'ratio':>6}")
    for n_envs in args.n_envs:
        batch_size = args.batch_size or n_envs * args.n_steps // 4
        times: dict[str, list[float]] = {"stock": [], "sequence": []}
        for _ in range(args.repeats):
            for name, buffer_cls in (("stock", RecurrentDictRolloutBuffer), ("sequence", SequenceDictRolloutBuffer)):
                buffer = filled(buffer_cls, n_envs, args.n_steps, args.device)
                times[name].append(seconds_per_update(buffer, batch_size, args.epochs, args.device))
        stock, sequence = (1000 * statistics.median(times[name]) for name in ("stock", "sequence"))
        print(f"{n_envs:>7} {batch_size:>9} {stock:>15.1f} {sequence:>12.1f} {stock / sequence:>6.1f}", flush=True)


if __name__ == "__main__":
    main()
