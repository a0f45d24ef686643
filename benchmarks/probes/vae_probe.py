"""VI+HN's VAE on GridNavi: its cost next to a PPO update, and how many VAE steps it needs to locate the goal.

    python benchmarks/probes/vae_probe.py --threads 1

Builds VI+HN from zoo_configs/vi_hn.yml. (1) Cost: median over --repeats of one update (``train()``, which ends
with the entry's 3 VAE steps) and of the VAE steps alone. (2) Learning: with the policy frozen (learning rate 0), it
collects --meta-episodes meta-episodes of the untrained policy, then trains the VAE alone on them and prints, every
--every steps, the reward the decoder predicts at the goal transitions and elsewhere from the belief's mean after
the first step and after the last: a belief that has located the goal predicts about 1 at the goal (and -0.1
elsewhere) from its last latent, and cannot from its first.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch as th

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `python benchmarks/<kind>/<x>.py`
import envs  # noqa: F401
from benchmarks.common import ZOO_CONFIGS, add_threads_option, new_parser, set_threads
from sb3_hypernet.experiments.zoo import build_model


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = new_parser(__doc__)
    add_threads_option(parser)
    parser.add_argument("--repeats", type=int, default=5, help="timed updates")
    parser.add_argument("--meta-episodes", type=int, default=400, help="meta-episodes collected for the VAE alone")
    parser.add_argument("--vae-steps", type=int, default=1500)
    parser.add_argument("--every", type=int, default=250)
    return parser


def goal_predictions(policy: Any, fixed: dict[str, th.Tensor]) -> str:
    """The reward the decoder predicts at the goal transitions and elsewhere, from the first and the last latent."""
    with th.no_grad():
        _, latent = policy.encode_meta_episodes(fixed["obs"])
        mean, _ = policy.belief(latent)
        next_state = fixed["next_state"].float()
        goal = fixed["reward"] > 0.5
        out = []
        for j, name in ((0, "first"), (mean.shape[1] - 1, "last")):
            z = mean[:, j : j + 1].expand(-1, next_state.shape[1], -1)
            predicted = policy.reward_decoder(th.cat([z, next_state], dim=-1)).squeeze(-1)
            out.append(
                f"{name} latent: {predicted[goal].mean():5.2f} at the goal, {predicted[~goal].mean():5.2f} elsewhere"
            )
        return "; ".join(out)


def main() -> None:
    args = build_parser().parse_args()
    set_threads(args.threads)
    config = ZOO_CONFIGS / "vi_hn.yml"

    model, _ = build_model(config, "GridNavi-v0", algo="meta_ppo_lstm", seed=0)
    model.learn(3 * model.n_envs * model.n_steps)
    update, vae = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        model.train()
        update.append(time.perf_counter() - start)
        start = time.perf_counter()
        model._train_on_meta_episodes()
        vae.append(time.perf_counter() - start)
    print(
        f"torch threads {th.get_num_threads()}: update (PPO + {model.vae_updates} VAE steps) "
        f"{statistics.median(update):.2f} s, the VAE steps alone {statistics.median(vae):.2f} s "
        f"(medians of {args.repeats})"
    )

    model, _ = build_model(config, "GridNavi-v0", algo="meta_ppo_lstm", seed=0, learning_rate=0.0)
    model.learn(args.meta_episodes * 60)  # GridNavi's meta-episodes are 60 steps
    buffer, policy = model.meta_episode_buffer, model.policy
    fixed = buffer.sample(200)

    print(f"VAE alone on {len(buffer)} meta-episodes of the untrained policy ({len(fixed['lengths'])} probed):")
    for step in range(args.vae_steps + 1):
        if step % args.every == 0:
            print(f"{step:>6} VAE steps: {goal_predictions(policy, fixed)}", flush=True)
        model._train_on_meta_episodes()


if __name__ == "__main__":
    main()
