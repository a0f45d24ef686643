"""Command line: rl_zoo3's training command, with this package's algorithms among its ``--algo`` choices.

    python -m sb3_hypernet.train --algo meta_ppo_lstm --env GridNavi-v0 --gym-packages envs \\
        --conf-file zoo_configs/ti_naive.yml

rl_zoo3 fixes its ``--algo`` choices when it starts, before ``--gym-packages`` are imported, so a new algorithm
needs this launcher; everything else is ``python -m rl_zoo3.train`` unchanged (``--algo ppo_lstm`` works too).
Added algorithms: ``meta_ppo_lstm`` (:class:`~sb3_hypernet.MetaRecurrentPPO`). Added ``--vec-env`` choice: ``array``
(the task family's array-stepped VecEnv, :mod:`envs.vector`: all envs stepped in one call). Added flag: ``--tf32``
(:func:`enable_tf32`: TensorFloat-32 matrix products on CUDA GPUs). ``-optimize`` samples only a search space (default:
the learning rate) and merges it into the entry, ``policy_kwargs`` included, instead of zoo's stock sampler;
``--search-space FILE`` sets the space (:mod:`sb3_hypernet.optimize`).
"""

from __future__ import annotations

import sys

import rl_zoo3.train
import torch as th
from rl_zoo3.exp_manager import ExperimentManager

from sb3_hypernet.optimize import MetaExperimentManager, use_search_space
from sb3_hypernet.zoo import register_algorithms


def use_array_vec_env(argv: list[str]) -> list[str]:
    """``argv`` with ``--vec-env array`` replaced by zoo's ``dummy``, after pointing rl_zoo3's own VecEnv override
    (``ExperimentManager.default_vec_env_cls``) at the array-stepped VecEnv; ``argv`` unchanged otherwise."""
    argv = list(argv)
    for i, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith("--vec-env=") else argv[i + 1] if arg == "--vec-env" else None
        if value == "array":
            from envs.vector import array_vec_env

            ExperimentManager.default_vec_env_cls = staticmethod(array_vec_env)  # a function, not a method
            argv[i : i + (1 if "=" in arg else 2)] = ["--vec-env", "dummy"]
            break
    return argv


def enable_tf32() -> None:
    """Let CUDA run float32 matrix products, convolutions and cuDNN's GRU in TensorFloat-32 (Ampere and later: ~10
    bits of mantissa in the products, float32 accumulation). CPU computations are unaffected; PPO's losses and
    optimiser stay float32."""
    th.backends.cuda.matmul.fp32_precision = "tf32"
    th.backends.cudnn.conv.fp32_precision = "tf32"
    th.backends.cudnn.rnn.fp32_precision = "tf32"


def use_tf32(argv: list[str]) -> list[str]:
    """``argv`` without ``--tf32``, after :func:`enable_tf32` if it was there."""
    if "--tf32" not in argv:
        return list(argv)
    enable_tf32()
    return [arg for arg in argv if arg != "--tf32"]


def main() -> None:
    register_algorithms()
    sys.argv = [sys.argv[0], *use_array_vec_env(use_search_space(use_tf32(sys.argv[1:])))]
    rl_zoo3.train.ExperimentManager = MetaExperimentManager  # zoo's train() builds its manager by this name
    rl_zoo3.train.train()


if __name__ == "__main__":
    main()
