"""Every numeric option of every command line rejects values it cannot mean, with a message that names the option
(``sweep --frames -5`` used to train nothing and record the grid point as complete)."""

from __future__ import annotations

import argparse
import sys

import pytest

from sb3_hypernet import enjoy, evaluate, plot, sweep, train
from sb3_hypernet.experiments.arguments import (
    ZOO_TRAIN_OPTIONS,
    above,
    at_least,
    check_zoo_arguments,
    probability,
    seed,
)

SWEEP = ["--methods", "rnn", "--envs", "GridNavi-v0", "--study-name", "s"]
EVALUATE = ["--env", "GridNavi-v0", "--model", "model.zip"]
PLOT = ["--storage", "study.log", "--study-name", "s", "--out", "figures"]
ZOO = ["--algo", "meta_ppo_lstm", "--env", "GridNavi-v0"]

BAD = [
    (sweep, SWEEP, "--frames", "-5"),
    (sweep, SWEEP, "--frames", "0"),
    (sweep, SWEEP, "--frames", "1e6x"),
    (sweep, SWEEP, "--checkpoints", "0"),
    (sweep, SWEEP, "--seeds", "-1"),
    (sweep, SWEEP, "--seeds", "2.5"),
    (sweep, SWEEP, "--learning-rates", "0"),
    (sweep, SWEEP, "--learning-rates", "-0.0003"),
    (sweep, SWEEP, "--learning-rates", "nan"),
    (sweep, SWEEP, "--n-eval", "0"),
    (sweep, SWEEP, "--eval-seed", "-3"),
    (sweep, SWEEP, "--threads", "0"),
    (sweep, SWEEP, "--heartbeat-interval", "0"),
    (sweep, SWEEP, "--grace-period", "-1"),
    (sweep, SWEEP, "--max-retry", "-1"),
    (sweep, SWEEP, "--poll", "0"),
    (evaluate, EVALUATE, "-n", "0"),
    (evaluate, EVALUATE, "--n-meta-episodes", "-2"),
    (evaluate, EVALUATE, "--n-envs", "0"),
    (evaluate, EVALUATE, "--seed", "-1"),
    (evaluate, EVALUATE, "--exp-id", "-1"),
    (evaluate, EVALUATE, "--adaptation-episodes", "-1"),
    (evaluate, EVALUATE, "--evaluation-episodes", "0"),
    (evaluate, EVALUATE, "--tasks-per-class", "0"),
    (plot, PLOT, "--confidence", "1.5"),
    (plot, PLOT, "--confidence", "nan"),
    (train, ZOO, "-n", "-5"),
    (train, ZOO, "--n-timesteps", "0"),
    (train, ZOO, "--seed", "-7"),
    (train, ZOO, "--n-trials", "0"),
    (train, ZOO, "--n-jobs", "0"),
    (train, ZOO, "--eval-episodes", "0"),
    (enjoy, ZOO, "-n", "0"),
    (enjoy, ZOO, "--n-envs", "0"),
    (enjoy, ZOO, "--seed", "-1"),
]


@pytest.mark.parametrize(("module", "base", "option", "value"), BAD, ids=lambda x: getattr(x, "__name__", None))
def test_an_impossible_value_is_an_error_naming_the_option(module, base, option, value, monkeypatch, capsys):
    argv = [*base, option, value]
    with pytest.raises(SystemExit) as stop:
        if module in (train, enjoy):  # rl_zoo3's command lines read sys.argv
            monkeypatch.setattr(sys, "argv", [module.__name__, *argv])
            module.main()
        else:
            module.main(argv)
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert f"argument {option}" in error or f"/{option}" in error or f"{option}/" in error, error
    assert repr(value) in error


def test_the_grace_period_must_exceed_the_heartbeat(capsys):
    with pytest.raises(SystemExit):
        sweep.main([*SWEEP, "--heartbeat-interval", "10", "--grace-period", "10"])
    assert "--grace-period (10 s) must exceed --heartbeat-interval (10 s)" in capsys.readouterr().err


def test_learning_rates_outside_the_sweeps_range_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as stop:
        sweep.main([*SWEEP, "--learning-rates", "5"])
    assert stop.value.code == 2 and "learning rates must lie in" in capsys.readouterr().err


def test_the_sweep_worker_refuses_a_budget_of_no_frames():
    from sb3_hypernet.experiments.sweep import SweepWorker

    with pytest.raises(ValueError, match="frames must be >= 1"):
        SweepWorker(study=None, grid=[], frames=-5)  # type: ignore[arg-type]


def test_the_types_accept_what_the_options_can_mean():
    assert at_least(1)("1e6") == 1_000_000 and isinstance(at_least(1)("1e6"), int)
    assert at_least(0)("0") == 0
    assert above(0)("3e-4") == pytest.approx(3e-4)
    assert seed("0") == 0 and seed(str(2**32 - 1)) == 2**32 - 1
    assert probability("0.68") == pytest.approx(0.68)
    for parse, text in [(at_least(1), "0"), (above(0), "inf"), (seed, str(2**32)), (probability, "0")]:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


def test_zoo_arguments_pass_through_untouched_when_valid():
    # rl_zoo3's defaults and its other options (-params values, -optimize) are not this check's business.
    check_zoo_arguments(
        ["--algo", "ppo_lstm", "-n", "2000", "--seed", "-1", "-params", "n_envs:2", "-optimize", "--eval-freq", "-1"],
        ZOO_TRAIN_OPTIONS,
    )
