"""Meta-World's evaluation protocol for recurrent meta-learners (sb3_hypernet.common.adaptation): the same success
rates as metaworld.evaluation on the same fixed policy, the hidden state kept across a task's episodes, bookkeeping."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401

metaworld_envs = pytest.importorskip("envs.metaworld", reason="needs the metaworld extra")
import metaworld  # noqa: E402
from metaworld.evaluation import metalearning_evaluation  # noqa: E402

from sb3_hypernet.common.adaptation import evaluate_adaptation  # noqa: E402


def reach_toward(point: np.ndarray):
    """A fixed policy: move the hand toward ``point`` (a P-controller on the observed hand position)."""

    def act(obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, np.float32)
        action = np.zeros((*obs.shape[:-1], 4), np.float32)
        action[..., :3] = np.clip(10 * (point - obs[..., :3]), -1, 1)
        return action

    return act


class RecurrentStandIn:
    """The fixed policy behind the recurrent predict interface, counting the episode starts it is told of."""

    def __init__(self, act, observation_space):
        self.act, self.observation_space, self.starts = act, observation_space, 0

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        self.starts += int(np.sum(episode_start))
        return self.act(obs["obs"]), state


class OfficialAgent:
    """The same fixed policy as metaworld.evaluation's MetaLearningAgent."""

    def __init__(self, act):
        self.act = act

    def eval_action(self, obs):
        return self.act(obs)

    def adapt_action(self, obs):
        return self.act(obs), {}

    def reset(self, env_mask):
        pass

    def init(self):
        pass

    def step(self, timestep):
        pass

    def adapt(self):
        pass


def first_goal(bench, class_name: str) -> np.ndarray:
    task = next(task for task in bench.test_tasks if task.env_name == class_name)
    return pickle.loads(task.data)["rand_vec"][-3:]


@pytest.mark.parametrize(
    ("name", "task_env_id", "target", "offset", "expected"),
    [
        ("reach-v3", "ML1ReachTask-v0", "reach-v3", 0.0, 1.0),  # reaches the goal of the task
        ("reach-v3", "ML1ReachTask-v0", "reach-v3", 0.2, 0.0),  # misses it
        ("ML10", "ML10Task-v0", "drawer-open-v3", 0.0, 0.2),  # succeeds on sweep-into only, 1 of 5 classes
    ],
)
def test_the_success_rate_is_metaworlds_on_the_same_fixed_policy(name, task_env_id, target, offset, expected):
    bench = metaworld_envs.benchmark("ML10", None, 0) if name == "ML10" else metaworld_envs.benchmark("ML1", name, 0)
    act = reach_toward(first_goal(bench, target) + offset)
    # One task per test class (the first), so that Meta-World's per-class episode counting is per task.
    env = gym.make(task_env_id, split="test").unwrapped
    tasks = [next(i for i, task in enumerate(env.tasks) if task.env_name == c) for c in sorted(bench.test_classes)]
    space = gym.make(task_env_id.replace("Task", "")).observation_space
    ours = evaluate_adaptation(
        RecurrentStandIn(act, space), task_env_id, tasks=tasks, adaptation_episodes=1, evaluation_episodes=3,
        env_kwargs={"split": "test"},
    )  # fmt: skip
    official_envs = metaworld._make_ml_envs_inner(
        bench, meta_batch_size=len(bench.test_classes), seed=0, total_tasks_per_cls=1, split="test"
    )
    official_rate, _, official_per_class = metalearning_evaluation(
        OfficialAgent(act), official_envs, num_evals=1, adaptation_episodes=1, evaluation_episodes=3
    )
    assert ours.success_rate == pytest.approx(official_rate) == pytest.approx(expected)
    assert ours.class_success_rates == pytest.approx({k: float(v) for k, v in official_per_class.items()})


def test_the_hidden_state_is_kept_across_a_tasks_episodes_and_results_are_per_inner_episode():
    space = gym.make("ML1Reach-v0").observation_space
    bench = metaworld_envs.benchmark("ML1", "reach-v3", 0)
    policy = RecurrentStandIn(reach_toward(first_goal(bench, "reach-v3")), space)
    result = evaluate_adaptation(policy, "ML1ReachTask-v0", tasks=[0, 1, 2], adaptation_episodes=2,
                                 evaluation_episodes=1, n_envs=2, env_kwargs={"split": "test"})  # fmt: skip
    assert policy.starts == 3  # one episode start per task, not one per inner episode
    assert result.returns.shape == result.successes.shape == (3, 3)
    assert result.successes[0].tolist() == [1.0, 1.0, 1.0]  # the first task's goal is the controller's target
    summary = result.summary()
    assert summary["n_tasks"] == 3 and len(summary["inner_successes"]) == 3
    assert summary["success_rate"] == pytest.approx(result.task_success_rates.mean())
    with pytest.raises(ValueError, match="evaluation_episodes"):
        evaluate_adaptation(policy, "ML1ReachTask-v0", evaluation_episodes=0)


def test_the_evaluator_runs_the_protocol_on_each_split_of_a_saved_model(tmp_path, capsys):
    import json
    from pathlib import Path

    from sb3_hypernet.evaluate import main as evaluate_main
    from sb3_hypernet.experiments.zoo import build_model

    conf = Path(__file__).resolve().parents[1] / "zoo_configs" / "sb3_loss" / "rnn_hn.yml"
    small = "dict(gru_hidden_size=16, net_arch=[16, 8], state_embedding_dim=12, latent_embedding_dim=4)"
    model, _ = build_model(conf, "ML1Reach-v0", seed=0, n_envs=2, n_steps=100, batch_size=100, policy_kwargs=small)
    model.learn(200)
    model.save(tmp_path / "ml1.zip")
    capsys.readouterr()
    args = ["--model", str(tmp_path / "ml1.zip"), "--env", "ML1Reach-v0", "--protocol", "adaptation", "--json"]
    evaluate_main([*args, "--tasks-per-class", "2", "--adaptation-episodes", "1", "--evaluation-episodes", "1"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["protocol"] == "adaptation" and set(out["splits"]) == {"train", "test"}
    for summary in out["splits"].values():
        assert summary["n_tasks"] == 2 and len(summary["inner_successes"]) == 2
        assert 0.0 <= summary["success_rate"] <= 1.0
    with pytest.raises(SystemExit, match="does not fit ML1ReachTask-v0"):  # a raw task id
        evaluate_main(["--model", str(tmp_path / "ml1.zip"), "--env", "ML1ReachTask-v0", "--protocol", "adaptation"])
