"""Command line: rl_zoo3's training command, with this package's algorithms among its ``--algo`` choices.

    python -m sb3_hypernet.train --algo meta_ppo_lstm --env GridNavi-v0 --gym-packages envs \\
        --conf-file zoo_configs/ti_naive.yml

rl_zoo3 fixes its ``--algo`` choices when it starts, before ``--gym-packages`` are imported, so a new algorithm
needs this launcher; everything else is ``python -m rl_zoo3.train`` unchanged (``--algo ppo_lstm`` works too).
Added algorithms: ``meta_ppo_lstm`` (:class:`~sb3_hypernet.MetaRecurrentPPO`), ``pearl`` and ``maml``
(:class:`~sb3_hypernet.PEARL`, :class:`~sb3_hypernet.MAML`; rl_zoo3's periodic evaluation and ``-optimize`` cannot run
their adaptation, so the first is off for them and the second refused: evaluate their saved models with
``python -m sb3_hypernet.evaluate``). Added ``--vec-env`` choice: ``array``
(the task family's array-stepped VecEnv, :mod:`envs.vector`: all envs stepped in one call). Added flag: ``--tf32``
(:func:`enable_tf32`: TensorFloat-32 matrix products on CUDA GPUs). ``--conf-file`` also takes a method name
(``--conf-file rnn_hn``: the package's zoo config, found wherever the package is installed), and without
``--gym-packages`` the benchmarks (``envs``) are registered. ``-optimize`` samples
only a search space (default: the learning rate) and merges it into the entry, ``policy_kwargs`` included, instead
of zoo's stock sampler; ``--search-space FILE`` sets the space (:mod:`sb3_hypernet.optimize`).
"""

from __future__ import annotations

import sys

import rl_zoo3.train

from sb3_hypernet.experiments.arguments import ZOO_TRAIN_OPTIONS, check_zoo_arguments
from sb3_hypernet.experiments.configs import use_zoo_configs
from sb3_hypernet.experiments.search_space import MetaExperimentManager, use_search_space
from sb3_hypernet.experiments.zoo import (
    register_algorithms,
    use_array_vec_env,
    use_default_gym_packages,
    use_meta_algorithm_evaluation,
    use_tf32,
)


def main() -> None:
    register_algorithms()
    check_zoo_arguments(sys.argv[1:], ZOO_TRAIN_OPTIONS)
    try:
        argv = use_default_gym_packages(use_zoo_configs(sys.argv[1:]))
    except ValueError as error:
        raise SystemExit(f"{sys.argv[0]}: error: argument --conf-file: {error}") from None
    argv = use_meta_algorithm_evaluation(argv)
    sys.argv = [sys.argv[0], *use_array_vec_env(use_search_space(use_tf32(argv)))]
    rl_zoo3.train.ExperimentManager = MetaExperimentManager  # zoo's train() builds its manager by this name
    rl_zoo3.train.train()


if __name__ == "__main__":
    main()
