"""Training frames/s against the number of envs, with the time split between env stepping, the policy's forward pass
in rollouts, buffer work and the update.

    python benchmarks/speed/scaling.py --methods rnn rnn_hn --n-envs 16 64 256 1024 --threads 1
    python benchmarks/speed/scaling.py --methods rnn_hn --n-envs 256 1024 4096 --device cuda --tf32   # on a GPU machine
    python benchmarks/speed/scaling.py --methods rnn rnn_hn --n-envs 256 1024 --algo ppo_lstm meta_ppo_lstm

--algo runs each row under each algorithm given: sb3-contrib's RecurrentPPO (ppo_lstm) or MetaRecurrentPPO
(meta_ppo_lstm, the default: the same update with the batched sequence buffer and one device sync per update).
--tf32 allows TensorFloat-32 products on CUDA; --hypernet-mode sets the generated layers' mode of methods that have
them (factorised or materialised).

Each method trains with its zoo entry for --env (GridNavi-v0: 60 steps per env per update, 2 epochs, 4 minibatches)
on the family's array-stepped VecEnv (--vec-env dummy for DummyVecEnv), n_envs changed and the minibatch size scaled
with it so that an update always has 4 minibatches. After one warm-up update, --updates updates are timed; a row
gives the median of --repeats such runs. The time split: "env" is the VecEnv's step (VecNormalize included), "policy"
the policy's forward pass while collecting, "buffer" the rollout buffer's add, its returns and advantages and the
minibatches it cuts and pads for the update, "update" the rest of the update (losses, backward, optimiser), "other"
what remains (SB3's rollout loop, callbacks, tensor conversions).
"""

from __future__ import annotations

import argparse
import pydoc
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch as th

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `python benchmarks/<kind>/<x>.py`
import envs  # noqa: F401  (registers the benchmark ids)
from benchmarks.common import ZOO_CONFIGS, add_threads_option, new_parser, set_threads
from sb3_hypernet.common.policy_keywords import constructor_keywords
from sb3_hypernet.experiments.zoo import build_model, enable_tf32, load_hyperparams, merge_policy_kwargs


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = new_parser(__doc__)
    parser.add_argument("--methods", nargs="+", default=["rnn", "rnn_hn"], help="zoo config names")
    parser.add_argument("--env", default="GridNavi-v0")
    parser.add_argument("--n-envs", type=int, nargs="+", default=[16, 64, 256, 1024])
    parser.add_argument("--updates", type=int, default=1, help="timed PPO updates per run (after one warm-up update)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per row; the median is shown")
    parser.add_argument("--vec-env", choices=["array", "dummy"], default="array")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--algo", nargs="+", default=["meta_ppo_lstm"], choices=["ppo_lstm", "meta_ppo_lstm"])
    parser.add_argument("--tf32", action="store_true", help="TensorFloat-32 products on CUDA")
    parser.add_argument("--hypernet-mode", choices=["factorized", "materialized"], default=None)
    add_threads_option(parser)
    return parser


def timed(clock: dict[str, float], key: str, function: Callable[..., Any], device: str) -> Callable[..., Any]:
    """``function`` adding its wall time to ``clock[key]`` (synchronising CUDA so the time is the work's)."""

    def wrapper(*call_args: Any, **call_kwargs: Any) -> Any:
        if device.startswith("cuda"):
            th.cuda.synchronize()
        began = time.perf_counter()
        result = function(*call_args, **call_kwargs)
        if device.startswith("cuda"):
            th.cuda.synchronize()
        clock[key] += time.perf_counter() - began
        return result

    return wrapper


def run(args: argparse.Namespace, method: str, algo: str, n_envs: int) -> dict[str, float]:
    """Seconds per part and frames/s of ``args.updates`` updates of ``method`` with ``n_envs`` envs."""
    conf = ZOO_CONFIGS / f"{method}.yml"
    entry = load_hyperparams(conf, args.env, algo)  # checked against the algorithm the row trains with
    minibatches = entry["n_envs"] * entry["n_steps"] // entry["batch_size"]
    overrides: dict[str, Any] = dict(n_envs=n_envs, batch_size=n_envs * entry["n_steps"] // minibatches)
    if args.hypernet_mode and "hypernet_mode" in constructor_keywords(pydoc.locate(entry["policy"])):
        overrides["policy_kwargs"] = merge_policy_kwargs(
            entry.get("policy_kwargs"), {"hypernet_mode": args.hypernet_mode}
        )
    model, callbacks = build_model(
        conf, args.env, seed=0, device=args.device, algo=algo, vec_env_type=args.vec_env, **overrides
    )
    frames_per_update = n_envs * model.n_steps
    model.learn(frames_per_update, callback=callbacks)  # warm-up: allocations, first-call costs
    clock: dict[str, float] = defaultdict(float)
    venv = model.get_env()
    venv.step_wait = timed(clock, "env", venv.step_wait, args.device)
    model.policy.forward = timed(clock, "policy", model.policy.forward, args.device)
    buffer = model.rollout_buffer
    buffer.add = timed(clock, "buffer", buffer.add, args.device)
    buffer.compute_returns_and_advantage = timed(clock, "buffer", buffer.compute_returns_and_advantage, args.device)
    buffer._get_samples = timed(clock, "buffer_update", buffer._get_samples, args.device)
    model.train = timed(clock, "train", model.train, args.device)
    began = time.perf_counter()
    model.learn(args.updates * frames_per_update, callback=callbacks, reset_num_timesteps=False)
    total = time.perf_counter() - began
    parts = {
        "env": clock["env"],
        "policy": clock["policy"],
        "buffer": clock["buffer"] + clock["buffer_update"],
        "update": clock["train"] - clock["buffer_update"],
    }
    parts["other"] = total - sum(parts.values())
    return {"fps": args.updates * frames_per_update / total, **{k: v / total for k, v in parts.items()}}


def main() -> None:
    args = build_parser().parse_args()
    set_threads(args.threads)
    if args.tf32:
        enable_tf32()
    print(
        f"{args.env}, {args.vec_env} VecEnv, device {args.device}, torch threads {th.get_num_threads()}, "
        f"tf32 {'on' if args.tf32 else 'off'}, hypernet mode {args.hypernet_mode or 'as configured'}, "
        f"{args.updates} timed update(s) per run, median of {args.repeats}"
    )
    print(
        f"{'method':<8} {'algo':<14} {'n_envs':>7} {'frames/s':>9}   share of time: env  policy  buffer  update  other"
    )
    for method in args.methods:
        for n_envs in args.n_envs:
            for algo in args.algo:
                runs = [run(args, method, algo, n_envs) for _ in range(args.repeats)]
                row = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
                shares = "  ".join(f"{row[key]:6.1%}" for key in ("env", "policy", "buffer", "update", "other"))
                print(f"{method:<8} {algo:<14} {n_envs:>7} {row['fps']:>9.0f}   {shares}", flush=True)


if __name__ == "__main__":
    main()
