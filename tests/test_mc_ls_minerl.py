"""The minerl backend of MC-LS against a stand-in with minerl's dict observation and action format and the old gym API
(minerl itself, a Java 8 build, is not installed for the tests)."""

from __future__ import annotations

import numpy as np
import pytest

shimmy = pytest.importorskip("shimmy")

import gymnasium  # noqa: E402
import old_gym  # noqa: E402
from gymnasium.utils.env_checker import check_env as gym_check_env  # noqa: E402
from stable_baselines3.common.env_checker import check_env as sb3_check_env  # noqa: E402

from envs.mc_ls import DIAMOND, FORWARD, GREEN, IRON, LEFT, RED, RIGHT, SIGNAL, LongShortMemoryMaze  # noqa: E402
from envs.mc_ls_minerl import BLOCKS, CourseLayout, MineRLLongShortMemory, resize_image  # noqa: E402
from sb3_hypernet.common.meta_episode import MetaEpisodeWrapper  # noqa: E402

#: Old gym's API, as minerl speaks it (tests/old_gym.py); installed as ``gym`` for each test of this module.
gym_legacy = old_gym.module()


@pytest.fixture(autouse=True)
def old_gym_installed(monkeypatch):
    old_gym.install(monkeypatch, gym_legacy)


_COLOURS = {
    None: (120, 160, 255),  # sky
    BLOCKS["wall"]: (110, 110, 110),
    BLOCKS["diamond"]: (90, 230, 220),
    BLOCKS["iron"]: (216, 216, 216),
    BLOCKS["green"]: (40, 200, 40),
    BLOCKS["red"]: (210, 40, 40),
    BLOCKS["hidden"]: (160, 160, 160),
    BLOCKS["end"]: (245, 200, 40),
}


class Text(gym_legacy.Space):
    """minerl's ``Text`` space (the chat action): a space neither gym nor shimmy knows."""

    def __init__(self):
        super().__init__((), str)

    def sample(self, mask=None):
        return ""

    def contains(self, x):
        return isinstance(x, str)


class MineRLStandIn:
    """An old-gym env in minerl's format: ``reset() -> obs``, ``step(action) -> (obs, reward, done, info)``, ``seed``;
    observations ``{"pov": (64, 64, 3) uint8, "inventory": {...}}``, actions a dict of key presses, ``camera`` and
    ``chat``. It runs the commands the adapter sends (``/fill``, ``/setblock``, ``/tp``) on a block dictionary and
    renders a ``pov`` from the blocks around the agent: the block ahead at eye level fills the middle, the blocks to the
    left and right the sides, and the floor the bottom rows."""

    metadata = {"render.modes": ["rgb_array"]}

    def __init__(self, max_steps: int = 100_000, with_chat: bool = True):
        spaces = gym_legacy.spaces
        self.observation_space = spaces.Dict(
            {
                "pov": spaces.Box(0, 255, (64, 64, 3), np.uint8),
                "inventory": spaces.Dict({"dirt": spaces.Box(0, 2304, (), np.int64)}),
            }
        )
        keys = {key: spaces.Discrete(2) for key in ("forward", "back", "left", "right", "jump", "sneak", "sprint")}
        keys["camera"] = spaces.Box(-180.0, 180.0, (2,), np.float32)
        if with_chat:
            keys["chat"] = Text()
        self.action_space = spaces.Dict(keys)
        self.max_steps = max_steps
        self.seeds: list[int] = []
        self.chat_log: list[str] = []
        self.n_resets = 0
        self.world: dict[tuple[int, int, int], str] = {}
        self.pose = (0.5, 5.0, 0.5, 0.0, 0.0)

    def seed(self, seed=None):
        self.seeds.append(seed)

    def reset(self):
        self.n_resets += 1
        self.world, self.steps, self.pose = {}, 0, (0.5, 5.0, 0.5, 0.0, 0.0)
        return self._obs()

    def step(self, action):
        assert set(action) == set(self.action_space.spaces), "an action must hold every key, as minerl's"
        assert all(action[key] in (0, 1) for key in ("forward", "back", "left", "right", "jump", "sneak", "sprint"))
        assert np.shape(action["camera"]) == (2,)
        if action.get("chat"):
            self._run(action["chat"])
        self.steps += 1
        return self._obs(), 0.0, self.steps >= self.max_steps, {}

    def _run(self, command: str) -> None:
        self.chat_log.append(command)
        words = command.split()
        if words[0] == "/tp":
            self.pose = tuple(float(word) for word in words[2:7])
            return
        if words[0] == "/setblock":
            x, y, z = (int(word) for word in words[1:4])
            self.world[(x, y, z)] = " ".join(words[4:])
            return
        assert words[0] == "/fill", command
        a, b = np.array(words[1:4], int), np.array(words[4:7], int)
        low, high = np.minimum(a, b), np.maximum(a, b)
        block = " ".join(words[7:])
        for x in range(low[0], high[0] + 1):
            for y in range(low[1], high[1] + 1):
                for z in range(low[2], high[2] + 1):
                    if block == BLOCKS["air"]:
                        self.world.pop((x, y, z), None)
                    else:
                        self.world[(x, y, z)] = block

    def _colour(self, position) -> tuple[int, int, int]:
        return _COLOURS[self.world.get(position)]

    def _obs(self):
        x, y, z = int(np.floor(self.pose[0])), int(self.pose[1]), int(np.floor(self.pose[2]))
        pov = np.empty((64, 64, 3), np.uint8)
        pov[:, 20:44] = self._colour((x, y + 1, z - 1))  # ahead (facing north, -z)
        pov[:, :20] = self._colour((x - 1, y + 1, z))
        pov[:, 44:] = self._colour((x + 1, y + 1, z))
        pov[48:] = self._colour((x, y - 1, z))
        pov[56:, :8] = (z * 13) % 256  # a marker of the depth, so that every cell looks different
        return {"pov": pov, "inventory": {"dirt": np.array(0)}}

    def render(self, mode="rgb_array"):
        return self._obs()["pov"]

    def close(self):
        self.closed = True


def make(variant: str = "LS", **kwargs) -> MineRLLongShortMemory:
    return MineRLLongShortMemory(env=MineRLStandIn(**kwargs.pop("standin", {})), variant=variant, **kwargs)


def column(standin: MineRLStandIn, layout: CourseLayout, room: int) -> set[str]:
    x0, y0, z0 = layout.origin
    return {standin.world.get((x0, y, z0 - 4 * room - 2)) for y in (y0, y0 + 1)}


def test_the_course_is_built_in_the_world():
    env = make()
    env.reset(seed=0, options={"room_types": [DIAMOND, IRON] * 8})
    env.set_task((GREEN,))
    env.reset(seed=0, options={"room_types": [DIAMOND, IRON] * 8})
    standin, layout = env.backend.gym_env.env, env.layout
    for room in range(16):
        assert column(standin, layout, room) == {BLOCKS["diamond" if room % 2 == 0 else "iron"]}
        x0, y0, z0 = layout.origin
        for side in (-1, 1):
            assert standin.world[(x0 + side, y0, z0 - 4 * room)] == BLOCKS["wall"]  # (+-1, 0) are walls
    x0, y0, z0 = layout.origin
    assert standin.world[(x0 - 2, y0 + 1, z0 + 1)] == BLOCKS["green"]
    # A new episode redraws the columns and keeps the structure (built once per minerl episode).
    built = sum(command.startswith(f"/fill {x0 - 2} {y0} {z0}") for command in standin.chat_log)
    env.reset(options={"room_types": [IRON] * 16})
    assert all(column(standin, layout, room) == {BLOCKS["iron"]} for room in range(16))
    assert sum(command.startswith(f"/fill {x0 - 2} {y0} {z0}") for command in standin.chat_log) == built


@pytest.mark.parametrize("variant", ["LS", "LSO", "LSH", "LSN"])
def test_same_mdp_as_the_drawn_maze(variant):
    """Same seed and actions: the same rewards, ends, tasks and statistics as MCLSTask; the agent stands in
    Minecraft where the rules put it, and only moves send a teleport."""
    minecraft = make(variant)
    drawn = LongShortMemoryMaze(variant)
    rng = np.random.default_rng(0)
    standin = minecraft.backend.gym_env.env
    for episode in range(3):
        seed = 7 if episode == 0 else None
        minecraft.reset(seed=seed)
        drawn.reset(seed=seed)
        assert minecraft.course.signal == drawn.course.signal
        assert np.array_equal(minecraft.course.room_types, drawn.course.room_types)
        while True:
            # Mostly the right move, sometimes another, so that blocked moves and wrong checks happen.
            right = drawn.course.correct_actions()[0]
            action = right if rng.random() < 0.8 else int(rng.integers(3))
            sent = len(standin.chat_log)
            before = drawn.course.situation()
            *_, reward, terminated, truncated, info = minecraft.step(action)
            _, drawn_reward, drawn_terminated, drawn_truncated, drawn_info = drawn.step(action)
            assert (reward, terminated, truncated) == (drawn_reward, drawn_terminated, drawn_truncated)
            assert info.keys() == drawn_info.keys()
            moved = drawn.course.situation() != before
            assert len(standin.chat_log) - sent == int(moved)
            position = minecraft.layout.agent_position(minecraft.course)
            assert tuple(int(np.floor(v)) for v in standin.pose[:3]) == position
            if terminated or truncated:
                assert info["episode_statistics"] == pytest.approx(drawn_info["episode_statistics"], nan_ok=True)
                break


def test_observations_are_minecraft_frames_scaled_and_resized():
    env = make(resolution=16, render_mode="rgb_array")
    obs, _ = env.reset(seed=1)
    pov = env.backend.gym_env.env._obs()["pov"]
    assert obs.shape == (16, 16, 3) and obs.dtype == np.float32
    assert np.array_equal(obs, (resize_image(pov, 16).astype(np.float32) - 128) / 128)
    assert env.observation_space.contains(obs)
    assert np.array_equal(env.render(), pov)  # a person sees minerl's whole frame


def test_lsh_blanks_the_signal_and_lsn_adds_noise():
    hidden = make("LSH")
    obs, _ = hidden.reset(seed=0)
    assert hidden.course.phase == SIGNAL and not obs.any()
    obs, *_ = hidden.step(RIGHT)
    assert obs.any()
    noisy = make("LSN")
    first, _ = noisy.reset(seed=0)
    again, *_ = noisy.step(LEFT)  # blocked: same frame, new noise
    assert not np.array_equal(first, again)
    assert np.std(first - again) == pytest.approx(0.05 * np.sqrt(2), rel=0.2)


def test_signal_colours_differ_in_the_world():
    frames = {}
    for colour in (RED, GREEN):
        env = make(task=(colour,))
        frames[colour], _ = env.reset(seed=0)
    assert not np.array_equal(frames[RED], frames[GREEN])


def test_minerl_episode_end_truncates_and_the_next_reset_starts_a_new_one():
    env = make(standin={"max_steps": 80})  # building the course takes 55 minerl steps
    standin = env.backend.gym_env.env
    env.reset(seed=0)
    build_steps, build_commands = standin.steps, len(standin.chat_log)
    truncated = False
    steps = 0
    while not truncated:
        _, _, terminated, truncated, info = env.step(FORWARD if steps % 2 else RIGHT)
        steps += 1
        assert not terminated
    assert build_steps == build_commands > 0 and build_steps + steps == 80
    assert info["minerl_done"] and "episode_statistics" in info
    resets = standin.n_resets
    env.reset()
    assert standin.n_resets == resets + 1


def test_seeds_reach_the_minerl_env_and_episodes_repeat():
    def run(seed):
        env = make("LSN")
        frames = [env.reset(seed=seed)[0]]
        for action in [RIGHT, FORWARD, LEFT, FORWARD, FORWARD, RIGHT]:
            frames.append(env.step(action)[0])
        return np.stack(frames), env.backend.gym_env.env.seeds

    first, seeds = run(3)
    second, _ = run(3)
    assert np.array_equal(first, second) and seeds and seeds[0] is not None


@pytest.mark.filterwarnings("ignore:.*is an image but:UserWarning", "ignore:The minimal resolution:UserWarning")
@pytest.mark.filterwarnings("ignore:.*env.seed to get variables from other wrappers:UserWarning")
def test_env_checkers_and_meta_episodes():
    gym_check_env(make(), skip_render_check=True)
    sb3_check_env(make(), warn=True)
    meta = MetaEpisodeWrapper(gymnasium.wrappers.TimeLimit(make(), 200), n_episodes=2)
    meta.reset(seed=0)
    task = meta.unwrapped
    while True:
        _, _, terminated, _, info = meta.step(task.course.correct_actions()[0])
        if terminated:
            break
    assert info["inner_returns"] == pytest.approx([13.7, 13.7])


def test_bad_backends_are_named():
    with pytest.raises(ValueError, match="chat"):
        make(standin={"with_chat": False})
    with pytest.raises(ValueError, match="env_id"):
        MineRLLongShortMemory()
    with pytest.raises(ImportError, match="minerl"):
        MineRLLongShortMemory(env_id="MineRLNavigateDense-v0")
