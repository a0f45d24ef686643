"""MC-LS, the MineCraft long-short memory maze (NeurIPS 2023 section 4.3): rules, rewards, variants, views,
seeding, training."""

from __future__ import annotations

import itertools
import json

import gymnasium as gym
import numpy as np
import pytest
from sb3_contrib import RecurrentPPO

import envs  # noqa: F401  (registers the ids)
from envs.mc_ls import (
    DIAMOND,
    END,
    FORWARD,
    GREEN,
    IRON,
    LEFT,
    RED,
    RIGHT,
    ROOM_CELLS,
    ROOMS,
    SIGNAL,
    VARIANTS,
    LongShortMemoryCourse,
    LongShortMemoryMaze,
    draw_view,
    goes_right,
)
from sb3_hypernet import RNNHNPolicy, evaluate
from sb3_hypernet.common.evaluation import evaluate_meta_policy
from sb3_hypernet.meta_ppo.loading import load_meta_model

VARIANT_IDS = {"LS": "MCLS-v0", "LSN": "MCLSN-v0", "LSO": "MCLSO-v0", "LSH": "MCLSH-v0"}


def course(room_types=(DIAMOND, IRON), signal=(GREEN,), timeout=200) -> LongShortMemoryCourse:
    return LongShortMemoryCourse(len(room_types), signal, np.array(room_types), timeout)


def walk(c: LongShortMemoryCourse, actions) -> list[float]:
    return [c.step(action)[0] for action in actions]


# ---------------------------------------------------------------------------------------------------------------------
# Rules and rewards (NeurIPS 2023 section 4.3)
# ---------------------------------------------------------------------------------------------------------------------


def test_signal_platform_only_moves_right():
    c = course()
    assert walk(c, [LEFT, FORWARD]) == [0.0, 0.0]
    assert (c.phase, c.steps) == (SIGNAL, 2)
    assert walk(c, [RIGHT]) == [pytest.approx(0.1)]
    assert (c.phase, c.room, c.cell) == (ROOMS, 0, (0, 0))


def test_ordered_signal_has_two_cells():
    c = course(signal=(GREEN, RED))
    assert walk(c, [RIGHT]) == [pytest.approx(0.1)]
    assert (c.phase, c.signal_cell) == (SIGNAL, 1)
    walk(c, [RIGHT])
    assert c.phase == ROOMS


@pytest.mark.parametrize("room_type", [DIAMOND, IRON])
@pytest.mark.parametrize("side", [LEFT, RIGHT])
def test_every_move_of_a_room(room_type, side):
    """From (0, 0) to the next room through either side: each cell allows exactly its moves, blocked moves do
    nothing and pay 0, the check pays only on the column's side (diamond left, iron right)."""
    c = course(room_types=(room_type, DIAMOND))
    walk(c, [RIGHT])
    x = -1 if side == LEFT else 1
    path = [((0, 0), FORWARD, (0, 1)), ((0, 1), side, (x, 1)), ((x, 1), FORWARD, (x, 2)), ((x, 2), FORWARD, (x, 3))]
    path += [((x, 3), RIGHT if x < 0 else LEFT, (0, 3))]
    for cell, move, after in path:
        assert c.cell == cell
        allowed = {LEFT, RIGHT} if cell == (0, 1) else {move}  # the check: either side moves
        for blocked in {LEFT, FORWARD, RIGHT} - allowed:
            assert c.step(blocked) == (0.0, False, False), (cell, blocked)
            assert c.cell == cell
        reward, terminated, truncated = c.step(move)
        assert c.cell == after and not terminated and not truncated
        is_check = cell == (0, 1)
        correct_side = LEFT if room_type == DIAMOND else RIGHT
        assert reward == pytest.approx(0.1 if not is_check or side == correct_side else 0.0), cell
    for blocked in (LEFT, RIGHT):
        assert c.step(blocked)[0] == 0.0 and c.cell == (0, 3)
    assert c.step(FORWARD)[0] == pytest.approx(0.1)
    assert (c.room, c.cell, c.rooms_passed) == (1, (0, 0), 1)
    assert (c.checks, c.checks_correct) == (1, int(side == (LEFT if room_type == DIAMOND else RIGHT)))


@pytest.mark.parametrize("signal", [RED, GREEN])
@pytest.mark.parametrize("side", [LEFT, RIGHT])
def test_end_choice_pays_by_signal(signal, side):
    c = course(room_types=(IRON,), signal=(signal,))
    walk(c, [RIGHT, FORWARD, RIGHT, FORWARD, FORWARD, LEFT, FORWARD])
    assert c.phase == END
    assert c.step(FORWARD) == (0.0, False, False)
    reward, terminated, truncated = c.step(side)
    correct = (side == RIGHT) == (signal == GREEN)
    assert reward == (4.0 if correct else -3.0) and terminated and not truncated
    assert c.statistics()["end_choice_accuracy"] == float(correct)
    with pytest.raises(RuntimeError, match="reset"):
        c.step(FORWARD)


def test_ordered_signal_goes_right_only_for_green_then_red():
    orders = [(GREEN, RED), (RED, GREEN), (GREEN, GREEN), (RED, RED)]
    assert [goes_right(order) for order in orders] == [True, False, False, False]
    assert goes_right((GREEN,)) and not goes_right((RED,))


def test_timeout_ends_the_episode_with_reward_zero():
    c = course(timeout=3)
    assert c.step(RIGHT) == (pytest.approx(0.1), False, False)
    assert c.step(FORWARD) == (pytest.approx(0.1), False, False)
    # The third step, a correct check, would pay 0.1 but uses up the steps: truncated, reward 0.
    assert c.step(LEFT) == (0.0, False, True)
    assert c.statistics() == {
        "rooms_passed": 0.0,
        "check_accuracy": 1.0,
        "end_reached": 0.0,
        "end_choice_accuracy": pytest.approx(float("nan"), nan_ok=True),
    }


def test_env_timeout_at_200_steps_through_the_registered_id():
    env = gym.make("MCLSTask-v0")
    env.reset(seed=0)
    for step in range(1, 201):
        _, reward, terminated, truncated, info = env.step(LEFT)  # blocked on the signal platform
        assert reward == 0.0 and not terminated
        assert truncated == (step == 200)
    assert info["episode_statistics"]["end_reached"] == 0.0


def play_optimally(env_id: str, seed: int = 0, **kwargs) -> dict:
    env = gym.make(env_id, **kwargs)
    env.reset(seed=seed)
    maze = env.unwrapped
    while True:
        _, _, terminated, _, info = env.step(maze.course.correct_actions()[0])
        if terminated:
            return info


@pytest.mark.parametrize(
    ("variant", "episode_return", "length"),
    [("LS", 13.7, 98), ("LSN", 10.1, 62), ("LSO", 10.2, 63), ("LSH", 13.7, 98)],
)
def test_optimal_policy_return_per_variant(variant, episode_return, length):
    for seed in range(3):
        info = play_optimally(VARIANT_IDS[variant], seed)
        assert info["inner_returns"] == pytest.approx([episode_return] * 2)
        assert info["inner_lengths"] == [length] * 2
        assert info["inner_successes"] == [1.0, 1.0]
        statistics = info["inner_statistics"]
        assert [s["rooms_passed"] for s in statistics] == [VARIANTS[variant].n_rooms] * 2
        assert all(s["check_accuracy"] == 1.0 and s["end_choice_accuracy"] == 1.0 for s in statistics)


def test_reference_returns():
    assert gym.make("MCLS-v0").unwrapped.reference_returns(2) == ("optimal", [13.7, 13.7])
    assert gym.make("MCLSN-v0").unwrapped.reference_returns(2) == ("optimal", [10.1, 10.1])
    # LSH's first episode can only guess the side: 0.1 + 9.6 + (4 - 3) / 2.
    assert gym.make("MCLSH-v0").unwrapped.reference_returns(2) == ("Bayes-optimal", [10.2, 13.7])


# ---------------------------------------------------------------------------------------------------------------------
# Tasks, variants and views
# ---------------------------------------------------------------------------------------------------------------------


def test_task_is_fixed_across_the_meta_episode_and_rooms_are_redrawn():
    env = gym.make("MCLS-v0")
    env.reset(seed=3)
    maze = env.unwrapped
    signals, layouts = [], []
    for _ in range(2):
        signals.append(maze.course.signal)
        layouts.append(maze.course.room_types.copy())
        while maze.course is not None and not maze.course.done:
            env.step(maze.course.correct_actions()[0])
            if maze.course.steps == 0:
                break
    assert signals[0] == signals[1]
    assert not np.array_equal(layouts[0], layouts[1])


def test_room_types_are_uniform_and_independent_of_the_signal():
    maze = LongShortMemoryMaze()
    rng = np.random.default_rng(0)
    counts = np.zeros((2, 2))
    for seed in range(400):
        maze.set_task(maze.sample_task(rng))
        maze.reset(seed=seed)
        counts[maze.course.signal[0]] += np.bincount(maze.course.room_types, minlength=2)
    shares = counts[:, IRON] / counts.sum(axis=1)
    assert shares == pytest.approx([0.5, 0.5], abs=0.03)


def test_lso_signal_distribution():
    maze = LongShortMemoryMaze("LSO")
    rng = np.random.default_rng(0)
    tasks = [maze.sample_task(rng) for _ in range(8000)]
    frequencies = {pair: tasks.count(pair) / len(tasks) for pair in itertools.product((RED, GREEN), repeat=2)}
    assert all(share == pytest.approx(0.25, abs=0.02) for share in frequencies.values())
    assert np.mean([goes_right(task) for task in tasks]) == pytest.approx(0.25, abs=0.02)


def test_lsh_hides_the_signal():
    views = {}
    for signal in (RED, GREEN):
        env = gym.make("MCLSH-v0")
        obs, _ = env.reset(seed=0, options={"task": (signal,)})
        views[signal] = obs["obs"]
    assert np.array_equal(views[RED], views[GREEN]) and not views[RED].any()
    visible = [gym.make("MCLS-v0").reset(seed=0, options={"task": (s,)})[0]["obs"] for s in (RED, GREEN)]
    assert not np.array_equal(*visible)


def all_situations(variant: str) -> list[tuple]:
    signal_cells = VARIANTS[variant].signal_cells
    situations = [(SIGNAL, cell, colour) for cell in range(signal_cells) for colour in (RED, GREEN)]
    situations += [(ROOMS, room_type, *cell) for room_type in (DIAMOND, IRON) for cell in ROOM_CELLS]
    return [*situations, (END,)]


def situation_actions(situation: tuple) -> tuple[int, ...]:
    """The moves that the rules reward in a situation, from a course put there (the end needs memory: any side)."""
    if situation[0] == END:
        return (LEFT, RIGHT)
    c = course(room_types=(situation[1],) if situation[0] == ROOMS else (DIAMOND,))
    if situation[0] == ROOMS:
        c.phase, c.cell = ROOMS, tuple(situation[2:])
    return c.correct_actions()


@pytest.mark.parametrize("resolution", [10, 42, 7])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_situations_that_need_different_actions_look_different(variant, resolution):
    hidden = VARIANTS[variant].hidden_signal
    situations = all_situations(variant)
    for a, b in itertools.combinations(situations, 2):
        if set(situation_actions(a)) == set(situation_actions(b)):
            continue
        view_a, view_b = (draw_view(s, resolution, hidden) for s in (a, b))
        assert not np.array_equal(view_a, view_b), (a, b)
    # Room views also tell every cell and both materials apart, and the signal colours differ unless hidden.
    rooms = [draw_view(s, resolution).tobytes() for s in situations if s[0] == ROOMS]
    assert len(set(rooms)) == len(rooms) == 18
    signals = {draw_view((SIGNAL, 0, colour), resolution, hidden).tobytes() for colour in (RED, GREEN)}
    assert len(signals) == (1 if hidden else 2)


def test_observations_are_scaled_images():
    env = gym.make("MCLSTask-v0", resolution=42)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (42, 42, 3) and obs.dtype == np.float32
    assert obs.min() >= -1.0 and obs.max() < 1.0
    raw = draw_view(env.unwrapped.course.situation(), 42)
    assert np.array_equal(obs, (raw.astype(np.float32) - 128) / 128)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_noise_only_in_lsn(variant):
    env = gym.make(VARIANT_IDS[variant].replace("-v0", "Task-v0"))
    obs, _ = env.reset(seed=0)
    situation = env.unwrapped.course.situation()
    clean = (draw_view(situation, 10, VARIANTS[variant].hidden_signal).astype(np.float32) - 128) / 128
    again, *_ = env.step(LEFT)  # blocked: same situation
    if variant == "LSN":
        assert not np.array_equal(obs, clean) and not np.array_equal(obs, again)
        assert np.std(obs - clean) == pytest.approx(0.05, rel=0.2)
        assert obs.min() >= -1.0 and obs.max() <= 1.0
    else:
        assert np.array_equal(obs, clean) and np.array_equal(obs, again)


def test_seeded_determinism():
    def rollout(seed):
        env = gym.make("MCLSN-v0")
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(1)
        frames, rewards = [obs["obs"]], []
        for _ in range(150):
            obs, reward, terminated, _, _ = env.step(int(rng.integers(3)))
            frames.append(obs["obs"])
            rewards.append(reward)
            if terminated:
                break
        return np.stack(frames), rewards, env.unwrapped.course.signal

    first, second, other = rollout(5), rollout(5), rollout(6)
    assert np.array_equal(first[0], second[0]) and first[1:] == second[1:]
    assert not np.array_equal(first[0][: len(other[0])], other[0][: len(first[0])])


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="variant"):
        LongShortMemoryMaze("LSX")
    with pytest.raises(ValueError, match="resolution"):
        LongShortMemoryMaze(resolution=2)
    with pytest.raises(ValueError, match="task"):
        LongShortMemoryMaze("LSO", task=(GREEN,))
    with pytest.raises(ValueError, match="room_types"):
        LongShortMemoryMaze().reset(seed=0, options={"room_types": [2] * 16})
    env = LongShortMemoryMaze()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(3)


def test_render_modes():
    env = gym.make("MCLSTask-v0", render_mode="rgb_array")
    env.reset(seed=0)
    picture = env.render()
    assert picture.dtype == np.uint8 and picture.shape[0] >= 100 and picture.shape[1] > 16 * 8 * 4
    text = gym.make("MCLSTask-v0", render_mode="ansi")
    text.reset(seed=0, options={"room_types": [IRON] * 16})
    text.unwrapped.set_task((GREEN,))
    text.reset(seed=0, options={"room_types": [IRON] * 16})
    for action in (RIGHT, FORWARD):
        text.step(action)
    assert text.render() == (
        "signal green (go right) | room 1/16 (iron column) cell (0, 1) | step 2/200 | rooms passed 0, checks 0/0"
    )


# ---------------------------------------------------------------------------------------------------------------------
# Training, saving, loading and evaluating
# ---------------------------------------------------------------------------------------------------------------------


def test_short_rnn_hn_run_saves_loads_and_evaluates(tmp_path, capsys):
    env = gym.make("MCLS-v0")
    model = RecurrentPPO(
        RNNHNPolicy,
        env,
        n_steps=128,
        batch_size=64,
        n_epochs=1,
        seed=0,
        policy_kwargs=dict(reward_embedding_dim=8, gru_hidden_size=32, state_embedding_dim=32, net_arch=[32]),
    )
    model.learn(256)
    model.save(tmp_path / "mcls")
    loaded = load_meta_model(tmp_path / "mcls.zip")
    before = evaluate_meta_policy(model, "MCLS-v0", 4, n_envs=2).summary()
    after = evaluate_meta_policy(loaded, "MCLS-v0", 4, n_envs=2).summary()
    assert json.dumps(before) == json.dumps(after)  # NaN statistics (no check made) compare equal as text
    assert after["reference"] == {"label": "optimal", "inner_returns": [13.7, 13.7], "meta_return": 27.4}
    assert set(after["inner_statistics"]) == {"rooms_passed", "check_accuracy", "end_reached", "end_choice_accuracy"}
    assert len(after["inner_statistics"]["rooms_passed"]) == 2
    # The evaluator prints the optimal return beside the measured one, and the memory statistics per episode.
    evaluate.main(["--model", str(tmp_path / "mcls.zip"), "--env", "MCLS-v0", "-n", "4", "--n-envs", "2"])
    printed = capsys.readouterr().out
    measured = after["meta_return"]["mean"]
    assert f"optimal return                27.400   (per episode 13.70, 13.70); measured {measured:.3f}" in printed
    assert "episode 2 end choice accuracy" in printed and "episode 1 rooms passed" in printed
