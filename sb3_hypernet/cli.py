"""The ``sb3-hypernet`` console command, in rl_zoo3's manner (``rl_zoo3 train``):

    sb3-hypernet train --algo meta_ppo_lstm --env GridNavi-v0 --gym-packages envs --conf-file zoo_configs/rnn_hn.yml
    sb3-hypernet evaluate --algo meta_ppo_lstm --env GridNavi-v0 -f logs

Each subcommand is the ``python -m sb3_hypernet.<command>`` of the same name, with the same arguments.
"""

from __future__ import annotations

import importlib
import sys

#: Subcommand -> (module, what it does).
COMMANDS = {
    "train": ("sb3_hypernet.train", "train with rl_zoo3 (this package's algorithms added)"),
    "enjoy": ("sb3_hypernet.enjoy", "run a trained agent (rl_zoo3's enjoy)"),
    "evaluate": ("sb3_hypernet.evaluate", "meta-episode returns, adaptation curves and success rates of a saved model"),
    "optimize": ("sb3_hypernet.optimize", "rl_zoo3's hyperparameter search over a search space"),
    "sweep": ("sb3_hypernet.sweep", "the papers' learning-rate x seed protocol on Optuna"),
    "plot": ("sb3_hypernet.plot", "figures and tables of a sweep"),
}


def main() -> None:
    usage = (
        "usage: sb3-hypernet {"
        + ",".join(COMMANDS)
        + "} [options]\n\n"
        + "\n".join(f"  {name:<10}{text}" for name, (_, text) in COMMANDS.items())
    )
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(usage)
        return
    command = sys.argv[1]
    if command not in COMMANDS:
        print(f"sb3-hypernet: unknown command {command!r}\n\n{usage}", file=sys.stderr)
        raise SystemExit(2)
    # The command parses sys.argv as python -m would give it.
    sys.argv = [f"sb3-hypernet {command}", *sys.argv[2:]]
    result = importlib.import_module(COMMANDS[command][0]).main()
    if isinstance(result, int):
        raise SystemExit(result)


if __name__ == "__main__":
    main()
