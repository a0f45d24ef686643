"""Argument types for the command lines: a number outside what an option can mean is an error naming the option,
never a silently different run (``sweep --frames -5`` would train nothing and record the run as complete).

Each type is an ``argparse`` ``type=``; argparse reports its ``ArgumentTypeError`` as ``argument --frames: must be a
number > 0, got '-5'``. rl_zoo3's own options are checked the same way by :func:`check_zoo_arguments` before
rl_zoo3 parses them.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence

#: The seeds numpy's and torch's generators take.
MAX_SEED = 2**32 - 1


def _number(text: str, kind: type) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    if kind is int and value != int(value):
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}")
    return int(value) if kind is int else value


def at_least(minimum: float, kind: type = int) -> Callable[[str], float]:
    """An argparse type: a number (``int`` also accepts ``1e6``) that is at least ``minimum``.

    :param minimum: the smallest value the option can mean
    :param kind: ``int`` or ``float``
    """

    def parse(text: str) -> float:
        value = _number(text, kind)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum:g}, got {text!r}")
        return value

    parse.__name__ = f"{kind.__name__} >= {minimum:g}"
    return parse


def above(minimum: float, kind: type = float) -> Callable[[str], float]:
    """An argparse type: a finite number strictly above ``minimum`` (seconds, learning rates).

    :param minimum: the value the option must exceed
    :param kind: ``int`` or ``float``
    """

    def parse(text: str) -> float:
        value = _number(text, kind)
        if value <= minimum:
            raise argparse.ArgumentTypeError(f"must be above {minimum:g}, got {text!r}")
        return value

    parse.__name__ = f"{kind.__name__} > {minimum:g}"
    return parse


def seed(text: str) -> int:
    """An argparse type: a seed numpy and torch accept, 0 to 2**32 - 1."""
    value = _number(text, int)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must lie in [0, 2**32 - 1], got {text!r}")
    return int(value)


def probability(text: str) -> float:
    """An argparse type: a number strictly between 0 and 1 (a confidence level)."""
    value = _number(text, float)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie in (0, 1), got {text!r}")
    return value


def zoo_seed(text: str) -> int:
    """rl_zoo3's ``--seed``: a seed, or -1 (its default) for a random one."""
    return -1 if text.strip() == "-1" else seed(text)


#: rl_zoo3 train's numeric options with the values they can mean (its defaults, e.g. ``-n -1`` for "the entry's
#: n_timesteps", are never passed through these checks unless given).
ZOO_TRAIN_OPTIONS: dict[tuple[str, ...], Callable[[str], float]] = {
    ("-n", "--n-timesteps"): at_least(1),
    ("--seed",): zoo_seed,
    ("--eval-episodes",): at_least(1),
    ("--n-eval-envs",): at_least(1),
    ("--n-trials",): at_least(1),
    ("--n-jobs",): at_least(1),
    ("--n-startup-trials",): at_least(0),
    ("--n-evaluations",): at_least(1),
}

#: rl_zoo3 enjoy's numeric options.
ZOO_ENJOY_OPTIONS: dict[tuple[str, ...], Callable[[str], float]] = {
    ("-n", "--n-timesteps"): at_least(1),
    ("--n-envs",): at_least(1),
    ("--seed",): seed,
    ("--load-checkpoint",): at_least(1),
}


def check_zoo_arguments(
    argv: Sequence[str], options: dict[tuple[str, ...], Callable[[str], float]], prog: str | None = None
) -> None:
    """Exit with argparse's usage error if one of rl_zoo3's numeric ``options`` in ``argv`` has a value it cannot
    mean (rl_zoo3 itself reads ``-n -5`` as "the entry's n_timesteps"); every other argument is left to rl_zoo3.

    :param argv: the command line, without the program name
    :param options: option strings -> argparse type that rejects impossible values
    :param prog: the program name in the message
    """
    parser = argparse.ArgumentParser(prog=prog or sys.argv[0], add_help=False, allow_abbrev=False)
    for names, kind in options.items():
        parser.add_argument(*names, type=kind)
    parser.parse_known_args(list(argv))
