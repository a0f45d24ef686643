"""python -m sb3_hypernet.plot on a recorded study: the figures' data, the best-learning-rate table and the files."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from sb3_hypernet.experiments.figures import best_learning_rates, collect
from sb3_hypernet.experiments.sweep import LEARNING_RATE_RANGE, GridPoint, open_storage
from sb3_hypernet.plot import main

GRID_REFERENCE = {"label": "Bayes-optimal", "inner_returns": [4.0, 11.07, 11.07, 11.07], "meta_return": 37.21}
MCLS_REFERENCE = {"label": "optimal", "inner_returns": [13.7, 13.7], "meta_return": 27.4}
#: (method, env, lr) -> final meta-episode returns of seeds 1, 2, 3
FINALS = {
    ("rnn", "GridNavi-v0", 1e-3): [30.0, 32.0, 34.0],
    ("rnn", "GridNavi-v0", 3e-4): [10.0, 12.0, 14.0],
    ("rnn_hn", "GridNavi-v0", 1e-3): [20.0, 20.0, 20.0],
    ("rnn_hn", "GridNavi-v0", 3e-4): [35.0, 36.0, 37.0],
    ("rnn", "MCLS-v0", 1e-3): [10.0, 11.0, 12.0],
    ("rnn_hn", "MCLS-v0", 1e-3): [20.0, 21.0, 22.0],
}


def summary(mean: float, env: str) -> dict:
    reference = GRID_REFERENCE if env == "GridNavi-v0" else MCLS_REFERENCE
    k = len(reference["inner_returns"])
    inner = [mean / k + (i - (k - 1) / 2) for i in range(k)]  # sums to mean, increasing over episodes
    stat = lambda v: {"mean": v, "ci_low": v - 1, "ci_high": v + 1}  # noqa: E731
    return {"meta_return": stat(mean), "inner_returns": [stat(v) for v in inner], "reference": reference}


def record(tmp_path) -> str:
    """A study as the sweep leaves it: completed runs with curves, one run still going."""
    path = str(tmp_path / "recorded.log")
    study = optuna.create_study(study_name="recorded", storage=open_storage(path), direction="maximize")
    distributions = {
        "learning_rate": FloatDistribution(*LEARNING_RATE_RANGE, log=True),
        "seed": IntDistribution(0, 2**31 - 1),
    }
    for (method, env, lr), finals in FINALS.items():
        for seed, final in enumerate(finals, start=1):
            point = GridPoint(method, env, lr, seed)
            curve = [{"frames": 100, **summary(final / 2, env)}, {"frames": 200, **summary(final, env)}]
            study.add_trial(
                create_trial(
                    state=TrialState.COMPLETE,
                    value=final,
                    params=point.params(),
                    distributions=distributions,
                    user_attrs={"grid_point": asdict(point), "curve": curve},
                    intermediate_values={100: final / 2, 200: final},
                )
            )
    running = GridPoint("rnn", "GridNavi-v0", 3e-3, 1)
    study.add_trial(create_trial(state=TrialState.WAITING, params=running.params(), distributions=distributions,
                                 user_attrs={"grid_point": asdict(running)}))  # fmt: skip
    return path


def test_plot_command_writes_the_papers_figures_from_a_study(tmp_path, capsys):
    storage = record(tmp_path)
    out = tmp_path / "figures"
    assert main(["--storage", storage, "--study-name", "recorded", "--out", str(out)]) == 0
    for name in ("learning_curves", "adaptation", "aggregate", "performance_profile"):
        assert (out / f"{name}.png").stat().st_size > 1000 and (out / f"{name}.pdf").exists()
    data = json.loads((out / "figures.json").read_text())

    grid = data["learning_curves"]["GridNavi-v0"]
    assert grid["reference"] == pytest.approx(37.21) and grid["reference_label"] == "Bayes-optimal"
    rnn, rnn_hn = grid["methods"]["rnn"], grid["methods"]["rnn_hn"]
    assert rnn["learning_rate"] == 1e-3 and rnn_hn["learning_rate"] == 3e-4  # best mean final return over seeds
    assert rnn["frames"] == [100, 200] and rnn["seeds"] == [1, 2, 3]
    assert rnn["mean"] == pytest.approx([16.0, 32.0]) and rnn_hn["mean"] == pytest.approx([18.0, 36.0])
    assert 30.0 <= rnn["ci_low"][1] < 32.0 < rnn["ci_high"][1] <= 34.0  # a bootstrap CI over the three seeds
    assert rnn_hn["ci_high"][1] - rnn_hn["ci_low"][1] < rnn["ci_high"][1] - rnn["ci_low"][1]  # less spread
    assert data["confidence"] == 0.68

    adaptation = data["adaptation"]["GridNavi-v0"]
    assert adaptation["reference"] == GRID_REFERENCE["inner_returns"] and adaptation["methods"]["rnn"]["seeds"] == [
        1,
        2,
        3,
    ]
    assert adaptation["methods"]["rnn"]["mean"] == pytest.approx([32 / 4 + d for d in (-1.5, -0.5, 0.5, 1.5)])
    assert len(data["adaptation"]["MCLS-v0"]["methods"]["rnn_hn"]["mean"]) == 2

    aggregate = data["aggregate"]
    assert aggregate["envs"] == ["GridNavi-v0", "MCLS-v0"] and aggregate["normalised_by_reference"] == [True, True]
    normalised = np.array([[30, 32, 34], [10, 11, 12]]) / np.array([[37.21], [27.4]])
    assert aggregate["methods"]["rnn"]["mean"] == pytest.approx(normalised.mean())
    assert aggregate["methods"]["rnn_hn"]["iqm"] > aggregate["methods"]["rnn"]["iqm"]
    low, high = aggregate["methods"]["rnn"]["mean_ci"]
    assert low <= normalised.mean() <= high
    assert len(aggregate["profiles"]["rnn"]) == len(aggregate["taus"]) and aggregate["profiles"]["rnn"][0] == 1.0

    table = (out / "learning_rates.md").read_text()
    assert "| rnn | GridNavi-v0 | 0.001 | 3 | **32.00** (best) |" in table
    assert "| rnn | GridNavi-v0 | 0.0003 | 3 | 12.00 |" in table
    assert "| rnn_hn | GridNavi-v0 | 0.0003 | 3 | **36.00** (best) |" in table
    assert "0.003" not in table  # the run still waiting is not in the figures
    assert table in capsys.readouterr().out


def test_plot_errors_are_named(tmp_path):
    storage = record(tmp_path)
    with pytest.raises(SystemExit):
        main(["--storage", storage, "--study-name", "nope", "--out", str(tmp_path / "x")])
    empty = optuna.create_study(study_name="empty", storage=open_storage(storage))
    assert collect(empty) == [] and best_learning_rates([]) == {}
    with pytest.raises(ValueError, match="has no completed run"):
        from sb3_hypernet.experiments.figures import make_figures

        make_figures(empty, tmp_path / "y")
