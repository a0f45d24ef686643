"""Does a trained MC-LS policy keep the signal until the end, and does it use it? A linear probe of the GRU latent.

    python benchmarks/probes/mcls_memory_probe.py /tmp/mcls/LS/1011200.zip --env MCLS-v0
    python benchmarks/probes/mcls_memory_probe.py /tmp/mcls/LS2/512000.zip --env MCLS-v0 --env-kwargs "dict(n_rooms=2)"

The policy plays the first episode of --n meta-episodes (deterministic actions, tasks seeded by --seed); at the first
step at the end (the side to choose) it records the GRU latent and the action probabilities. A least-squares linear
probe trained on half of the latents predicts the signal of the other half: about 0.5 means the latent no longer holds
the signal (memory lost), near 1.0 means it is there. It also prints how far apart the two signals' mean latents are
against the latent's spread, and the mean action probabilities at the end for each signal: if they are equal, the
policy does not use what the latent holds. Single-signal variants only (LS, LSN, LSH).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.utils import obs_as_tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `python benchmarks/<kind>/<x>.py`
import envs  # noqa: F401  (registers the benchmark ids)
from benchmarks.common import new_parser
from envs.mc_ls import END, LEFT, RIGHT
from sb3_hypernet import load_meta_model


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = new_parser(__doc__)
    parser.add_argument("model", help="a saved RecurrentPPO .zip trained on an MC-LS id")
    parser.add_argument("--env", default="MCLS-v0")
    parser.add_argument("--env-kwargs", default="dict()", help="a Python dict of gym.make keyword arguments")
    parser.add_argument("--n", type=int, default=200, help="meta-episodes")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main() -> None:
    args = build_parser().parse_args()
    th.set_num_threads(1)
    model = load_meta_model(args.model)
    policy = model.policy
    latents, signals, probabilities = [], [], []
    for index in range(args.n):
        env = gym.make(args.env, **eval(args.env_kwargs))
        obs, _ = env.reset(seed=args.seed + index)
        maze = env.unwrapped
        if len(maze.course.signal) != 1:
            raise SystemExit("the probe reads one signal cell: LS, LSN or LSH")
        state = None
        start = np.ones(1, dtype=bool)
        while not maze.course.done:
            batch = {key: value[None] for key, value in obs.items()}
            if maze.course.phase == END:
                tensors = obs_as_tensor(batch, policy.device)
                size = policy.history_encoder.hidden_size
                hidden = th.as_tensor(state[0]) if state is not None else th.zeros(1, 1, size)
                with th.no_grad():
                    flags = th.as_tensor(start, dtype=th.float32)
                    _, latent, _ = policy._encode_latent(tensors, (hidden, hidden), flags)
                    distribution, _ = policy.get_distribution(tensors, (hidden, hidden), flags)
                latents.append(latent[0].numpy())
                signals.append(maze.course.signal[0])
                probabilities.append(distribution.distribution.probs[0].numpy())
                break
            action, state = model.predict(batch, state=state, episode_start=start, deterministic=True)
            start = np.zeros(1, dtype=bool)
            obs, *_ = env.step(int(action[0]))

    latent, signal, probs = np.array(latents), np.array(signals), np.array(probabilities)
    print(f"{args.model} on {args.env} {args.env_kwargs}: {len(signal)} of {args.n} first episodes reached the end")
    if len(signal) < 4 or len(set(signal.tolist())) < 2:
        raise SystemExit("too few episodes reached the end with both signals to probe")
    half = len(signal) // 2
    design = np.c_[latent, np.ones(len(latent))]
    weights = np.linalg.lstsq(design[:half], 2.0 * signal[:half] - 1.0, rcond=None)[0]
    accuracy = float(((design[half:] @ weights > 0) == signal[half:]).mean())
    gap = float(np.linalg.norm(latent[signal == 1].mean(0) - latent[signal == 0].mean(0)))
    print(f"linear probe of the signal from the latent at the end: held-out accuracy {accuracy:.2f}")
    print(f"distance between the two signals' mean latents {gap:.2e}; mean latent std {latent.std(0).mean():.2e}")
    for colour, name in ((1, "green (go right)"), (0, "red (go left)")):
        p = probs[signal == colour].mean(0)
        print(
            f"action probabilities at the end, {name:<17}: left {p[LEFT]:.3f}, forward {p[1]:.3f}, right {p[RIGHT]:.3f}"
        )


if __name__ == "__main__":
    main()
