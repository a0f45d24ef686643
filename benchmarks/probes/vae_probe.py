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
import time
from pathlib import Path

import torch as th

import envs  # noqa: F401
from sb3_hypernet.zoo import build_model

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
parser.add_argument("--repeats", type=int, default=5, help="timed updates")
parser.add_argument("--meta-episodes", type=int, default=400, help="meta-episodes collected for the VAE alone")
parser.add_argument("--vae-steps", type=int, default=1500)
parser.add_argument("--every", type=int, default=250)
args = parser.parse_args()
if args.threads:
    th.set_num_threads(args.threads)
config = Path(__file__).resolve().parents[2] / "zoo_configs" / "vi_hn.yml"

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
    f"{statistics.median(update):.2f} s, the VAE steps alone {statistics.median(vae):.2f} s (medians of {args.repeats})"
)

model, _ = build_model(config, "GridNavi-v0", algo="meta_ppo_lstm", seed=0, learning_rate=0.0)
model.learn(args.meta_episodes * 60)  # GridNavi's meta-episodes are 60 steps
buffer, policy = model.meta_episode_buffer, model.policy
fixed = buffer.sample(200)


def goal_predictions() -> str:
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


print(f"VAE alone on {len(buffer)} meta-episodes of the untrained policy ({len(fixed['lengths'])} probed):")
for step in range(args.vae_steps + 1):
    if step % args.every == 0:
        print(f"{step:>6} VAE steps: {goal_predictions()}", flush=True)
    model._train_on_meta_episodes()
