"""What the user is told: the frames a budget really trains (SB3 collects whole rollouts), a budget that ends inside
multi-task pre-training, evaluation results that print as a table, and the evaluator's JSON."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env

import envs  # noqa: F401
from sb3_hypernet import MetaRecurrentPPO, RNNPolicy, TIPolicy, evaluate, evaluate_meta_policy
from sb3_hypernet.common.evaluation import EvaluationSummary, MetaEvaluation, rounded

SMALL = dict(gru_hidden_size=16, net_arch=[16, 8], latent_embedding_dim=4)
PPO = dict(n_steps=60, batch_size=40, n_epochs=1, seed=0, learning_rate=1e-3, policy_kwargs=SMALL)


def make(policy=RNNPolicy, expose_task: bool = False, **kwargs) -> MetaRecurrentPPO:
    env = make_vec_env("GridNavi-v0", n_envs=2, seed=0, env_kwargs=dict(expose_task=expose_task))
    return MetaRecurrentPPO(policy, env, **{**PPO, **kwargs})


def test_learn_says_when_sb3_rounds_the_budget_up_to_whole_rollouts(capsys):
    model = make(verbose=1)
    model.learn(200)
    assert model.num_timesteps == 240
    assert "Training to 240 frames, not 200: SB3 collects whole rollouts of n_steps x n_envs = 120 frames" in (
        capsys.readouterr().out
    )
    model.learn(120, reset_num_timesteps=False)  # a whole number of rollouts: nothing to say
    assert "Training to" not in capsys.readouterr().out


def test_a_budget_inside_pretraining_is_warned_about():
    model = make(TIPolicy, expose_task=True, pretrain_updates=3)
    with pytest.warns(UserWarning, match=r"ends at 360 frames, inside multi-task pre-training \(3 updates, until 360"):
        model.learn(300)


def test_a_budget_past_pretraining_is_not_warned_about():
    model = make(TIPolicy, expose_task=True, pretrain_updates=2, precollect_frames=120)
    # Updates start at 120 frames (after the first rollout); the second ends pre-training at 240, and 360 meta-trains.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.learn(360)
    with pytest.warns(UserWarning, match="inside multi-task pre-training"):
        make(TIPolicy, expose_task=True, pretrain_updates=2, precollect_frames=120).learn(240)


def ti_evaluation(folder) -> list[str]:
    return ["--model", str(folder / "pretraining.zip"), "--env", "GridNavi-v0", "--env-kwargs", "expose_task:True"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reports")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        make(TIPolicy, expose_task=True, pretrain_updates=5).learn(120).save(folder / "pretraining.zip")
    make().learn(200).save(folder / "rnn.zip")
    return folder


def test_the_evaluator_states_frames_trained_and_an_unfinished_pretraining(saved, capsys):
    evaluate.main(["--model", str(saved / "rnn.zip"), "--env", "GridNavi-v0", "-n", "2", "--n-envs", "2"])
    out = capsys.readouterr().out
    assert "MetaRecurrentPPO with RNNPolicy, trained 240 frames" in out and "pre-training" not in out
    evaluate.main([*ti_evaluation(saved), "-n", "2", "--n-envs", "2"])
    out = capsys.readouterr().out
    assert "trained 120 frames; still in multi-task pre-training (1 of 5 updates)" in out


def test_the_evaluators_json_has_seed_frames_and_rounded_numbers(saved, capsys):
    evaluate.main([*ti_evaluation(saved), "-n", "3", "--n-envs", "3", "--json", "--seed", "5"])
    text = capsys.readouterr().out
    result = json.loads(text)
    assert (result["seed"], result["frames"]) == (5, 120)
    assert result["pretraining"] == {"updates_done": 1, "updates": 5}
    assert not re.search(r"\d\.\d{5,}", text), text  # no float printed with more than 4 decimals


def test_a_summary_prints_as_the_evaluators_table_and_stays_a_dict():
    evaluation = MetaEvaluation(inner_returns=np.array([[-0.5, -1.0000000000000002], [0.1, 0.2]]))
    summary = evaluation.summary()
    assert isinstance(summary, dict) and isinstance(summary, EvaluationSummary)
    assert json.loads(json.dumps(summary))["meta_return"]["mean"] == pytest.approx(-0.6)
    table = str(summary)
    assert table.splitlines()[0].split() == ["mean", "68%", "CI"]
    assert re.search(r"meta-episode return\s+-0\.600\s+\[", table)
    assert "0000000000000002" not in table and str(evaluation) == table


def test_the_readme_example_prints_a_table():
    model = make()
    printed = str(evaluate_meta_policy(model, "GridNavi-v0", n_meta_episodes=2, n_envs=2).summary())
    assert "episode 1 return" in printed and "Bayes-optimal return" in printed


def test_rounded_rounds_floats_only():
    assert rounded({"a": [1.234567, 2], "b": {"c": 0.1 + 0.2}, "d": "x"}) == {
        "a": [1.2346, 2],
        "b": {"c": 0.3},
        "d": "x",
    }
