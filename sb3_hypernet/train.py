"""Command line: rl_zoo3's training command, with this package's algorithms among its ``--algo`` choices.

    python -m sb3_hypernet.train --algo meta_ppo_lstm --env GridNavi-v0 --gym-packages envs \\
        --conf-file zoo_configs/ti_naive.yml

rl_zoo3 fixes its ``--algo`` choices when it starts, before ``--gym-packages`` are imported, so a new algorithm
needs this launcher; everything else is ``python -m rl_zoo3.train`` unchanged (``--algo ppo_lstm`` works too).
Added algorithms: ``meta_ppo_lstm`` (:class:`~sb3_hypernet.MetaRecurrentPPO`).
"""

from __future__ import annotations

from rl_zoo3.train import train

from sb3_hypernet.zoo import register_algorithms


def main() -> None:
    register_algorithms()
    train()


if __name__ == "__main__":
    main()
