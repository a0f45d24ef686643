"""Command line: rl_zoo3's ``enjoy`` (run a trained agent), with this package's algorithms among its ``--algo``
choices.

    python -m sb3_hypernet.enjoy --algo meta_ppo_lstm --env GridNavi-v0 --gym-packages envs -f logs --no-render

Everything else is ``python -m rl_zoo3.enjoy`` unchanged, but for ``--gym-packages``, which defaults to the
package's benchmarks (``envs``). For meta-episode returns per inner episode, use
``python -m sb3_hypernet.evaluate``.
"""

from __future__ import annotations

import sys

from rl_zoo3.enjoy import enjoy

from sb3_hypernet.experiments.arguments import ZOO_ENJOY_OPTIONS, check_zoo_arguments
from sb3_hypernet.experiments.zoo import register_algorithms, use_default_gym_packages


def main() -> None:
    register_algorithms()
    check_zoo_arguments(sys.argv[1:], ZOO_ENJOY_OPTIONS)
    sys.argv = [sys.argv[0], *use_default_gym_packages(sys.argv[1:])]
    enjoy()


if __name__ == "__main__":
    main()
