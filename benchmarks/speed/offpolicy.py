"""SAC and TD3 with SA-Hyper critics (ICML 2021) against SB3's MlpPolicy: training speed, and SAC's learning curve.

    python benchmarks/speed/offpolicy.py throughput --threads 1
    python benchmarks/speed/offpolicy.py learning --steps 30000 --seeds 0 1 \\
        --out benchmarks/results/sac_hyper_halfcheetah.jsonl
    python benchmarks/speed/offpolicy.py table --out benchmarks/results/sac_hyper_halfcheetah.jsonl

``throughput``: training steps per second (one env step and one gradient step of batch 256 each) of each algorithm
with SB3's ``MlpPolicy`` and with the zoo configs' hypernetwork policies on HalfCheetah-v5, after the random warm-up
steps; interleaved repeats, medians, and the ratio hyper / MLP. "hyper-full-graph" is the hyper policy with
``freeze_critic_for_actor=False`` (the actor's loss also computes the critic's discarded gradients).

``learning``: SAC on HalfCheetah-v5 with the MLP critic (rl_zoo3's entry) and with the SA-Hyper critic
(``zoo_configs/sac_hyper.yml``), for each seed; the mean return of --eval-episodes deterministic episodes every
--eval-every steps, one JSON line per evaluation (a run appends as it goes, so a stopped run keeps its curve).

``table``: the learning results in --out as a Markdown table: each critic's return per seed and the mean over
seeds at every evaluated step, and the steps per second of each run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import SAC, TD3
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.noise import NormalActionNoise

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `python benchmarks/<kind>/<x>.py`
from benchmarks.common import add_threads_option, append_record, new_parser, read_records, set_threads
from sb3_hypernet import HyperSACPolicy, HyperTD3Policy

#: The zoo configs' settings: actor learning rate 3e-4, hyper critics at 5e-5 (ICML 2021).
HYPER_KWARGS = {"critic_learning_rate": 5e-5}


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = new_parser(__doc__)
    parser.add_argument("mode", choices=["throughput", "learning", "table"])
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument(
        "--steps", type=int, default=200, help="throughput: timed steps per measurement; learning: budget"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--learning-starts", type=int, default=10_000)
    parser.add_argument("--eval-every", type=int, default=5_000)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--critics", nargs="+", default=["mlp", "hyper"], choices=["mlp", "hyper"])
    add_threads_option(parser)
    parser.add_argument("--out", default=None)
    return parser


def make(args: argparse.Namespace, algo: type, critic: str, seed: int, learning_starts: int) -> Any:
    """``algo`` on --env; ``critic``: "mlp", "hyper", or "hyper-full-graph" (the actor's loss also builds the
    critic's gradients)."""
    hyper = critic.startswith("hyper")
    policy = {SAC: HyperSACPolicy, TD3: HyperTD3Policy}[algo] if hyper else "MlpPolicy"
    kwargs = {}
    if hyper:  # a fresh dict: SB3 adds keys to it
        kwargs["policy_kwargs"] = dict(HYPER_KWARGS, freeze_critic_for_actor=critic == "hyper")
    env = gym.make(args.env)
    if algo is TD3:  # rl_zoo3's MuJoCo setting
        n = env.action_space.shape[0]
        kwargs["action_noise"] = NormalActionNoise(np.zeros(n), 0.1 * np.ones(n))
    return algo(policy, env, learning_rate=3e-4, learning_starts=learning_starts, seed=seed, **kwargs)


def throughput(args: argparse.Namespace) -> None:
    """Training steps per second of SAC and TD3 with each critic."""
    warm = 300
    print(f"{args.env}, torch threads {th.get_num_threads()}, {args.steps} timed training steps after {warm} random "
          f"steps, batch 256, median of {args.repeats} interleaved runs")  # fmt: skip
    print(f"{'algo':<5} {'critic':<16} {'steps/s':>8} {'vs MLP':>7} {'critic params':>14}")
    for algo in (SAC, TD3):
        rates: dict[str, list[float]] = {"mlp": [], "hyper": [], "hyper-full-graph": []}
        sizes = {}
        for _ in range(args.repeats):
            for critic in rates:
                model = make(args, algo, critic, 0, warm)
                model.learn(warm + 10)  # random steps, then a few updates (first-call costs)
                began = time.perf_counter()
                model.learn(args.steps, reset_num_timesteps=False)
                rates[critic].append(args.steps / (time.perf_counter() - began))
                sizes[critic] = sum(p.numel() for p in model.policy.critic.parameters())
        mlp = statistics.median(rates["mlp"])
        for critic in rates:
            rate = statistics.median(rates[critic])
            print(f"{algo.__name__:<5} {critic:<16} {rate:>8.2f} {rate / mlp:>7.3f} {sizes[critic]:>14,}", flush=True)
        full = statistics.median(rates["hyper-full-graph"])
        print(f"{algo.__name__}: hyper / hyper-full-graph = {statistics.median(rates['hyper']) / full:.2f}", flush=True)


class Evaluate(BaseCallback):
    """Deterministic evaluation every --eval-every steps, appended to --out."""

    def __init__(self, args: argparse.Namespace, critic: str, seed: int):
        super().__init__()
        self.args = args
        self.critic, self.seed, self.next = critic, seed, args.eval_every
        self.began = time.perf_counter()
        self.eval_env = Monitor(gym.make(args.env))  # not the training env: its episode must go on
        self.eval_env.reset(seed=10_000 + seed)

    def _on_step(self) -> bool:
        args = self.args
        if self.num_timesteps >= self.next:
            self.next += args.eval_every
            mean, std = evaluate_policy(self.model, self.eval_env, args.eval_episodes, deterministic=True)
            record = dict(env=args.env, algo="sac", critic=self.critic, seed=self.seed, steps=self.num_timesteps,
                          mean_return=float(mean), std_return=float(std), seconds=time.perf_counter() - self.began,
                          threads=th.get_num_threads(), learning_starts=args.learning_starts)  # fmt: skip
            print(json.dumps(record), flush=True)
            if args.out:
                append_record(args.out, record)
        return True


def learning(args: argparse.Namespace) -> None:
    """SAC with each critic and seed, evaluated as it trains."""
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for critic in args.critics:
            model = make(args, SAC, critic, seed, args.learning_starts)
            model.learn(args.steps, callback=Evaluate(args, critic, seed))


def table(args: argparse.Namespace) -> None:
    """The learning results in --out as a Markdown table."""
    records = read_records(args.out)
    curves: dict[str, dict[int, dict[int, float]]] = {"mlp": {}, "hyper": {}}  # critic -> step -> seed -> return
    rates = {}
    for record in records:
        curves[record["critic"]].setdefault(record["steps"], {})[record["seed"]] = record["mean_return"]
        rates[(record["critic"], record["seed"])] = record["steps"] / record["seconds"]
    curves = {critic: curve for critic, curve in curves.items() if curve}
    seeds = sorted({record["seed"] for record in records})
    names = {"mlp": "MLP critic", "hyper": "SA-Hyper critic"}
    seed_list = ", ".join(map(str, seeds))
    print(f"| steps | {' | '.join(f'{names[c]}: mean (seeds {seed_list})' for c in curves)} |")
    print("|---|" + "---|" * len(curves))
    for step in sorted({step for curve in curves.values() for step in curve}):
        cells = []
        for curve in curves.values():
            returns = curve.get(step, {})
            per_seed = ", ".join(f"{returns[seed]:.1f}" if seed in returns else "-" for seed in seeds)
            mean = f"{statistics.mean(returns.values()):.1f}" if len(returns) == len(seeds) else "-"
            cells.append(f"{mean} ({per_seed})")
        print(f"| {step} | {' | '.join(cells)} |")
    print()
    print("steps/s over each run (random warm-up steps and evaluations included): " + ", ".join(
        f"{critic} seed {seed}: {rate:.2f}" for (critic, seed), rate in sorted(rates.items())))  # fmt: skip


def main() -> None:
    args = build_parser().parse_args()
    set_threads(args.threads)
    {"throughput": throughput, "learning": learning, "table": table}[args.mode](args)


if __name__ == "__main__":
    main()
