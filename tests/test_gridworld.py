"""GridNavi and its Show and Dense variants (NeurIPS 2023 section 4.1)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the gymnasium ids)
from envs.gridworld import GridNavi

STAY, UP, RIGHT, DOWN, LEFT = range(5)
CORNER = {(0, 0), (0, 1), (1, 0), (1, 1)}
GOAL_CELLS = {(x, y) for x in range(5) for y in range(5)} - CORNER


def positions(env: GridNavi, actions) -> list[tuple[int, int]]:
    """Positions (from the observation) after each action."""
    out = []
    for action in actions:
        obs, *_ = env.step(action)
        out.append(tuple(int(v) for v in obs))
    return out


def oracle_action(pos, goal) -> int:
    """Shortest path to a known goal (x first, then y), then stay."""
    if pos[0] < goal[0]:
        return RIGHT
    if pos[1] < goal[1]:
        return UP
    return STAY


# ---------------------------------------------------------------------------------------------------------------------
# Dynamics
# ---------------------------------------------------------------------------------------------------------------------


def test_starts_at_origin():
    env = GridNavi(task=(4, 4))
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, np.zeros(2, np.float32))
    assert obs.dtype == np.float32


@pytest.mark.parametrize(
    ("action", "expected"),
    [(STAY, (2, 2)), (UP, (2, 3)), (RIGHT, (3, 2)), (DOWN, (2, 1)), (LEFT, (1, 2))],
    ids=["stay", "up", "right", "down", "left"],
)
def test_action_moves(action, expected):
    env = GridNavi(task=(4, 4))
    env.reset(seed=0)
    assert positions(env, [UP, UP, RIGHT, RIGHT]) == [(0, 1), (0, 2), (1, 2), (2, 2)]
    assert positions(env, [action]) == [expected]


def test_walls_clip_moves():
    env = GridNavi(task=(4, 4))
    env.reset(seed=0)
    assert positions(env, [LEFT, DOWN]) == [(0, 0), (0, 0)]
    assert positions(env, [UP] * 6)[-2:] == [(0, 4), (0, 4)]
    assert positions(env, [RIGHT] * 6)[-2:] == [(4, 4), (4, 4)]
    assert positions(env, [UP, RIGHT]) == [(4, 4), (4, 4)]


def test_invalid_action_raises():
    env = GridNavi(task=(4, 4))
    env.reset(seed=0)
    with pytest.raises(ValueError):
        env.step(5)


def test_raw_id_has_15_step_episodes_without_termination():
    env = gym.make("GridNaviTask-v0")
    env.reset(seed=0)
    for t in range(1, 16):
        _, _, terminated, truncated, _ = env.step(RIGHT)
        assert not terminated
        assert truncated == (t == 15)


def test_reset_returns_to_origin_and_keeps_the_goal():
    env = gym.make("GridNaviTask-v0")
    env.reset(seed=0)
    goal = env.unwrapped.task_descriptor().copy()
    for _ in range(5):
        env.step(UP)
    obs, _ = env.reset()
    np.testing.assert_array_equal(obs, [0.0, 0.0])
    np.testing.assert_array_equal(env.unwrapped.task_descriptor(), goal)


@pytest.mark.parametrize("env_id", ["GridNavi-v0", "GridNaviShow-v0", "GridNaviDense-v0"])
def test_meta_ids_run_4_episodes_of_15_steps(env_id):
    env = gym.make(env_id)
    env.reset(seed=0)
    for t in range(1, 61):
        obs, _, terminated, truncated, info = env.step(UP)
        assert not truncated
        assert terminated == (t == 60)
        assert info["inner_episode"] == (t - 1) // 15
        assert obs["episode_done"][0] == float(t in (15, 30, 45))
    assert info["inner_lengths"] == [15, 15, 15, 15]
    assert len(info["inner_returns"]) == 4


def test_every_inner_episode_starts_at_origin():
    env = gym.make("GridNavi-v0")
    env.reset(seed=0, options={"task": (4, 4)})
    first_obs = []
    for t in range(1, 61):
        obs, *_ = env.step(RIGHT)
        if t in (15, 30, 45):
            first_obs.append(obs["obs"])
        else:
            assert obs["obs"][0] > 0  # moved right, away from the start
    np.testing.assert_array_equal(first_obs, np.zeros((3, 2), np.float32))


# ---------------------------------------------------------------------------------------------------------------------
# Rewards
# ---------------------------------------------------------------------------------------------------------------------


def test_sparse_reward():
    env = GridNavi(task=(1, 2))
    env.reset(seed=0)
    rewards = [env.step(a)[1] for a in (STAY, UP, UP, RIGHT, STAY, RIGHT, LEFT)]
    np.testing.assert_allclose(rewards, [-0.1, -0.1, -0.1, 1.0, 1.0, -0.1, 1.0])


def test_dense_reward():
    env = GridNavi(task=(3, 2), dense=True)
    env.reset(seed=0)
    actions = (STAY, UP, UP, UP, RIGHT, RIGHT, RIGHT, DOWN, STAY)
    # positions: (0,0) (0,1) (0,2) (0,3) (1,3) (2,3) (3,3) (3,2) (3,2)
    rewards = [env.step(a)[1] for a in actions]
    np.testing.assert_allclose(rewards, [-1.0, -0.8, -0.6, -0.8, -0.6, -0.4, -0.2, 1.0, 1.0])


def test_dense_id_uses_dense_reward():
    env = gym.make("GridNaviDenseTask-v0")
    env.reset(seed=0)
    env.unwrapped.set_task((4, 4))
    _, reward, *_ = env.step(UP)  # (0, 1): distance 7
    assert reward == pytest.approx(-7 / 5)


def test_sparse_id_uses_step_penalty():
    env = gym.make("GridNaviTask-v0")
    env.reset(seed=0)
    env.unwrapped.set_task((4, 4))
    _, reward, *_ = env.step(UP)
    assert reward == pytest.approx(-0.1)


# ---------------------------------------------------------------------------------------------------------------------
# Show
# ---------------------------------------------------------------------------------------------------------------------


def test_show_observation_is_the_goal_on_the_origin():
    env = GridNavi(task=(3, 4), show_goal=True)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, [3.0, 4.0])
    obs, *_ = env.step(STAY)  # still on (0, 0)
    np.testing.assert_array_equal(obs, [3.0, 4.0])
    obs, *_ = env.step(LEFT)  # bumps the wall, stays on (0, 0)
    np.testing.assert_array_equal(obs, [3.0, 4.0])
    obs, *_ = env.step(UP)
    np.testing.assert_array_equal(obs, [0.0, 1.0])
    obs, *_ = env.step(RIGHT)
    np.testing.assert_array_equal(obs, [1.0, 1.0])
    obs, *_ = env.step(LEFT)
    np.testing.assert_array_equal(obs, [0.0, 1.0])
    obs, *_ = env.step(DOWN)  # back on (0, 0)
    np.testing.assert_array_equal(obs, [3.0, 4.0])


def test_show_meta_id_shows_the_goal_at_every_inner_episode_start():
    env = gym.make("GridNaviShow-v0")
    obs, _ = env.reset(seed=0, options={"task": (2, 3)})
    np.testing.assert_array_equal(obs["obs"], [2.0, 3.0])
    for t in range(1, 16):
        obs, *_ = env.step(RIGHT)
        if t < 15:
            np.testing.assert_array_equal(obs["obs"], [min(t, 4), 0.0])
    np.testing.assert_array_equal(obs["obs"], [2.0, 3.0])  # first observation of inner episode 2


def test_non_show_observation_is_the_position_on_the_origin():
    env = GridNavi(task=(3, 4))
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, [0.0, 0.0])


# ---------------------------------------------------------------------------------------------------------------------
# Goal distribution and task interface
# ---------------------------------------------------------------------------------------------------------------------


def test_sample_task_covers_exactly_the_21_cells_outside_the_start_corner():
    env = GridNavi()
    rng = np.random.default_rng(0)
    samples = {tuple(int(v) for v in env.sample_task(rng)) for _ in range(2000)}
    assert samples == GOAL_CELLS
    assert len(samples) == 21


def test_sample_task_is_roughly_uniform():
    env = GridNavi()
    rng = np.random.default_rng(1)
    counts: dict[tuple[int, int], int] = {}
    for _ in range(4200):
        cell = tuple(int(v) for v in env.sample_task(rng))
        counts[cell] = counts.get(cell, 0) + 1
    assert min(counts.values()) > 120 and max(counts.values()) < 280  # expected 200 each


def test_sample_task_does_not_change_the_current_task():
    env = GridNavi(task=(4, 4))
    env.sample_task(np.random.default_rng(0))
    np.testing.assert_array_equal(env.task_descriptor(), [4.0, 4.0])


@pytest.mark.parametrize("task", [(5, 0), (0, 5), (-1, 2), (2, -1), (1, 2, 3), (3,)])
def test_set_task_rejects_cells_outside_the_grid(task):
    env = GridNavi()
    with pytest.raises(ValueError):
        env.set_task(task)


def test_constructor_rejects_a_task_outside_the_grid():
    with pytest.raises(ValueError):
        GridNavi(task=(7, 7))


def test_set_task_takes_effect_and_reset_keeps_it():
    env = GridNavi(task=(4, 4))
    env.set_task((2, 0))
    env.reset(seed=0)
    _, reward, *_ = env.step(RIGHT)
    assert reward == pytest.approx(-0.1)
    _, reward, *_ = env.step(RIGHT)
    assert reward == pytest.approx(1.0)


def test_task_descriptor_is_the_goal_as_float32_in_task_space():
    env = GridNavi()
    for cell in sorted(GOAL_CELLS):
        env.set_task(np.array(cell))
        descriptor = env.task_descriptor()
        assert descriptor.dtype == np.float32
        np.testing.assert_array_equal(descriptor, np.array(cell, np.float32))
        assert env.task_space.contains(descriptor)


def test_first_reset_samples_a_goal_when_none_is_set():
    env = GridNavi()
    env.reset(seed=0)
    assert tuple(int(v) for v in env.task_descriptor()) in GOAL_CELLS


# ---------------------------------------------------------------------------------------------------------------------
# Known-goal optimum and determinism
# ---------------------------------------------------------------------------------------------------------------------


def test_oracle_with_known_goal_reaches_the_known_goal_optimum():
    env = gym.make("GridNavi-v0")
    meta_returns = []
    for goal in sorted(GOAL_CELLS):
        env.reset(seed=0, options={"task": goal})
        pos, total, terminated = (0, 0), 0.0, False
        while not terminated:
            obs, reward, terminated, truncated, info = env.step(oracle_action(pos, goal))
            pos = tuple(int(v) for v in obs["obs"])
            total += reward
            assert not truncated
        distance = goal[0] + goal[1]
        episode_optimum = (15 - distance + 1) * 1.0 + (distance - 1) * -0.1
        np.testing.assert_allclose(info["inner_returns"], [episode_optimum] * 4, atol=1e-9)
        meta_returns.append(total)
    assert len(meta_returns) == 21
    assert np.mean(meta_returns) == pytest.approx(44.3, abs=0.05)


def _meta_task_sequence(seed: int, n: int = 8) -> list[tuple[float, ...]]:
    env = gym.make("GridNavi-v0", expose_task=True)
    tasks = []
    for i in range(n):
        obs, _ = env.reset(seed=seed if i == 0 else None)
        tasks.append(tuple(obs["task"]))
        for _ in range(3):
            env.step(env.action_space.sample())
    return tasks


def test_same_seed_gives_the_same_task_sequence():
    assert _meta_task_sequence(42) == _meta_task_sequence(42)


def test_different_seeds_give_different_task_sequences():
    assert _meta_task_sequence(0) != _meta_task_sequence(1)


def test_seeded_meta_episode_is_deterministic():
    def rollout():
        env = gym.make("GridNavi-v0", expose_task=True)
        env.reset(seed=3)
        return [env.step(a)[1] for a in [RIGHT, RIGHT, UP, UP, UP, STAY] * 10]

    np.testing.assert_array_equal(rollout(), rollout())


# ---------------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------------


def test_ansi_render_has_one_agent():
    env = gym.make("GridNaviTask-v0", render_mode="ansi")
    env.reset(seed=0)
    env.unwrapped.set_task((4, 4))
    text = env.render()
    assert isinstance(text, str)
    assert text.count("A") == 1 and text.count("G") == 1
    rows = text.splitlines()
    assert rows == ["....G", ".....", ".....", ".....", "A...."]
    env.step(UP)
    assert env.render().splitlines()[3] == "A...."


def test_ansi_render_with_agent_on_goal_has_one_agent():
    env = GridNavi(task=(2, 0), render_mode="ansi")
    env.reset(seed=0)
    positions(env, [RIGHT, RIGHT])
    text = env.render()
    assert text.count("A") == 1 and "G" not in text


@pytest.mark.parametrize("env_id", ["GridNaviTask-v0", "GridNavi-v0"])
def test_rgb_array_render(env_id):
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert isinstance(frame, np.ndarray)
    assert frame.dtype == np.uint8
    assert frame.ndim == 3 and frame.shape[2] == 3
    assert frame.shape[0] > 0 and frame.shape[1] > 0


def test_meta_env_renders_ansi():
    env = gym.make("GridNavi-v0", render_mode="ansi")
    env.reset(seed=0)
    text = env.render()
    assert isinstance(text, str) and text.count("A") == 1


def test_set_task_rejects_non_integer_cells():
    env = gym.make("GridNaviTask-v0").unwrapped
    with pytest.raises(ValueError, match="cell"):
        env.set_task((2.7, 1.9))


def test_ansi_render_before_any_task():
    from envs.gridworld import GridNavi

    assert GridNavi(render_mode="ansi").render().count("A") == 1
