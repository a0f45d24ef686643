"""The 2-D point robot (PEARL's and VariBAD's): dynamics, sparse and dense rewards, tasks, the oracle reference, and
its registered ids."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401
from envs.point_robot import PointRobot


def test_steps_are_clipped_and_rewards_follow_the_distance():
    env = PointRobot(dense=True, task=math.pi / 2)  # goal (0, 1)
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step([5.0, 1.0])  # clipped to (1, 1): a move of (0.1, 0.1)
    np.testing.assert_allclose(obs, [0.1, 0.1], atol=1e-7)
    assert reward == pytest.approx(-math.hypot(0.1, 0.9))
    assert not (terminated or truncated) and info["success"] == 0.0
    sparse = PointRobot(task=math.pi / 2)
    sparse.reset()
    for _ in range(8):
        _, reward, *_ = sparse.step([0.0, 1.0])
        assert reward == 0.0  # at most (0, 0.8): not yet within 0.2 of the goal
    _, reward, _, _, info = sparse.step([0.0, 1.0])  # at (0, 0.9): 0.1 from the goal
    assert reward == pytest.approx(0.9) and info["success"] == 1.0


def test_tasks_are_goals_on_the_upper_half_circle():
    env = PointRobot()
    rng = np.random.default_rng(0)
    angles = [env.sample_task(rng) for _ in range(500)]
    assert min(angles) >= 0.0 and max(angles) <= math.pi
    env.set_task(math.pi)
    np.testing.assert_allclose(env.task_descriptor(), [-1.0, 0.0], atol=1e-7)
    env.set_task([0.0, 1.0])  # a goal given as a point
    np.testing.assert_allclose(env.task_descriptor(), [0.0, 1.0], atol=1e-7)
    for bad in (4.0, -0.1, [0.5, 0.5], [0.0, -1.0]):
        with pytest.raises(ValueError, match="PointRobot task must be"):
            env.set_task(bad)
    env.reset()
    with pytest.raises(ValueError, match="2 finite numbers"):
        env.step([0.1, float("nan")])


def test_the_oracle_reference_is_an_upper_bound_on_straight_moves():
    env = gym.make("PointRobotTask-v0").unwrapped
    label, returns = env.reference_returns(3)
    assert label == "Oracle" and len(returns) == 3
    assert returns[0] == pytest.approx(13.3776, abs=1e-3)
    _, dense = gym.make("PointRobotDenseTask-v0").unwrapped.reference_returns(1)
    assert dense[0] == pytest.approx(-3.8444, abs=1e-3)
    env.set_task(math.pi / 2)  # straight up: 0.9 one step before the goal (step 9), then 1 on steps 10 to 20
    assert env.oracle_return(20) == pytest.approx(0.9 + 11)


def test_registered_ids_and_the_env_checker():
    for task_id in ("PointRobotTask-v0", "PointRobotDenseTask-v0"):
        env = gym.make(task_id)
        assert env.spec.max_episode_steps == 20
        check_env(env.unwrapped, skip_render_check=True)
    meta = gym.make("PointRobot-v0")
    obs, _ = meta.reset(seed=0)
    assert set(obs) == {"obs", "prev_action", "prev_reward", "episode_done"}
    steps = 0
    done = False
    while not done:
        _, _, terminated, truncated, info = meta.step(meta.action_space.sample())
        steps, done = steps + 1, terminated or truncated
    assert steps == 60 and len(info["inner_returns"]) == 3
    image = gym.make("PointRobotTask-v0", render_mode="rgb_array")
    image.reset(seed=0)
    assert image.render().shape == (64, 64, 3)


def test_mamls_navigation_terminates_at_the_goal_with_the_distance_as_cost():
    from envs.point_robot import Navigation2D

    env = Navigation2D(task=[0.2, -0.1])
    env.reset(seed=0)
    _, reward, terminated, _, _ = env.step([1.0, -1.0])  # to (0.1, -0.1)
    assert reward == pytest.approx(-0.1) and not terminated
    _, reward, terminated, _, _ = env.step([1.0, 0.0])  # to (0.2, -0.1): the goal
    assert reward == pytest.approx(0.0, abs=1e-9) and terminated
    rng = np.random.default_rng(0)
    goals = np.array([env.sample_task(rng) for _ in range(500)])
    assert np.abs(goals).max() <= 0.5 and goals.min() < -0.4 and goals.max() > 0.4
    with pytest.raises(ValueError, match=r"goal \(x, y\) in \[-0.5, 0.5\]\^2"):
        env.set_task([0.7, 0.0])
    assert gym.make("Navigation2DTask-v0").spec.max_episode_steps == 100
    check_env(gym.make("Navigation2DTask-v0").unwrapped, skip_render_check=True)
