"""MuJoCo families and Meta-World: environment-only steps/s and RNN+HN training frames/s per env, and their ratio.

    python benchmarks/speed/mujoco_throughput.py --updates 1 --device cpu
    python benchmarks/speed/mujoco_throughput.py --envs ML10-v0 --vec-env dummy subproc --threads 1

Env-only: the entry's n_envs meta-episode envs in a DummyVecEnv (or SubprocVecEnv) stepped with random actions (what
a rollout costs without the policy). Training: RecurrentPPO with RNN+HN and the env's zoo_configs/rnn_hn.yml
settings (the paper's n_envs, n_steps, epochs and minibatches), timed over --updates PPO updates after one warm-up
update. The ratio says how much of training time the simulator takes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch as th

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `python benchmarks/<kind>/<x>.py`
import envs  # noqa: F401
from benchmarks.common import ZOO_CONFIGS, add_threads_option, new_parser, set_threads
from sb3_hypernet.experiments.zoo import build_model

ENV_IDS = ["CheetahDir-v0", "CheetahVel-v0", "AntDir-v0", "WalkerRandParams-v0", "HumanoidDir-v0"]


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = new_parser(__doc__)
    parser.add_argument("--envs", nargs="+", default=ENV_IDS)
    parser.add_argument("--env-steps", type=int, default=2000, help="vectorised steps for the env-only figure")
    parser.add_argument("--updates", type=int, default=1, help="timed PPO updates per env")
    add_threads_option(parser)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--vec-env", nargs="+", default=["dummy"], choices=["dummy", "subproc"], help="VecEnv classes")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    set_threads(args.threads)
    config = ZOO_CONFIGS / "rnn_hn.yml"

    print(f"device {args.device}, torch {th.__version__}, torch threads {th.get_num_threads()}")
    print(f"{'env':<22}{'vec env':>9}{'env steps/s':>12}{'train frames/s':>16}{'env share':>11}")
    for env_id in args.envs:
        for vec_env_type in args.vec_env:
            model, _ = build_model(config, env_id, seed=0, device=args.device, vec_env_type=vec_env_type)
            vec_env, n_envs = model.get_env(), model.n_envs
            vec_env.reset()
            rng = np.random.default_rng(0)
            low, high = vec_env.action_space.low, vec_env.action_space.high
            actions = rng.uniform(low, high, (args.env_steps, n_envs, *vec_env.action_space.shape)).astype(np.float32)
            start = time.perf_counter()
            for action in actions:
                vec_env.step(action)
            env_fps = n_envs * args.env_steps / (time.perf_counter() - start)
            vec_env.close()

            model, _ = build_model(config, env_id, seed=0, device=args.device, vec_env_type=vec_env_type)
            frames_per_update = model.n_envs * model.n_steps
            model.learn(frames_per_update)  # warm-up
            start = time.perf_counter()
            model.learn(args.updates * frames_per_update, reset_num_timesteps=False)
            train_fps = args.updates * frames_per_update / (time.perf_counter() - start)
            share = train_fps / env_fps
            print(f"{env_id:<22}{vec_env_type:>9}{env_fps:>12.0f}{train_fps:>16.0f}{share:>11.0%}", flush=True)
            model.get_env().close()


if __name__ == "__main__":  # SubprocVecEnv's workers import this module
    main()
