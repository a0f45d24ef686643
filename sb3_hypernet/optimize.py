"""Command line: rl_zoo3's hyperparameter search on this package's zoo entries, sampling only a search space and
merging it into the entry (:mod:`sb3_hypernet.experiments.search_space`).

    python -m sb3_hypernet.optimize --algo meta_ppo_lstm --env GridNavi-v0 --gym-packages envs \\
        --conf-file zoo_configs/rnn_hn.yml --n-trials 20 --storage sweeps.log --study-name lr [--search-space space.yml]

The same as ``python -m sb3_hypernet.train ... -optimize``; every option of the training command applies.
"""

from __future__ import annotations

import sys

from sb3_hypernet import train


def main() -> None:
    if not {"-optimize", "--optimize-hyperparameters"} & set(sys.argv[1:]):
        sys.argv.append("-optimize")
    train.main()


if __name__ == "__main__":
    main()
