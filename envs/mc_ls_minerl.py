"""MC-LS played in real Minecraft through ``minerl`` (an optional backend; NeurIPS 2023 section 4.3).

The rules, rewards, task interface and variants are :class:`envs.mc_ls.LongShortMemoryTask`'s, so this env is the
same MDP as ``MCLSTask-v0`` except for what the agent sees: Minecraft's first-person frame (``pov``) instead of the
drawn view. Minecraft only renders: the adapter builds the course in the world with chat commands (the column of
every room in its material, the signal block in its colour, walls, the gold end wall) and moves the agent from cell
to cell by teleporting it, so positions never drift as walking would (the reference replays cached screenshots taken
the same way, cell by cell).

minerl envs speak the old gym API (``reset() -> obs``, ``step -> (obs, reward, done, info)``) with dict observations
and actions. They reach gymnasium through ``shimmy``'s ``GymV21CompatibilityV0``; spaces that neither gym nor
shimmy know (minerl's ``Text`` for the ``chat`` action) are left out of the declared spaces and still sent.

Status: minerl cannot be installed on the machines this package is built on (only minerl 0.4.4 exists on the index:
gym < 0.20 and a build that downloads a Java toolchain), so this adapter is tested against a stand-in with minerl's
observation and action format and the old gym API (``tests/test_mc_ls_minerl.py``), not against Minecraft. What it
needs of the minerl env: a ``pov`` image observation, a ``chat`` action, commands allowed (cheats on), a flat world
(any env spec with ``ChatAction`` and a flat world generator). Minecraft 1.11 command syntax, as minerl 0.4 runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from envs.mc_ls import DIAMOND, GREEN, ROOMS, SIGNAL, LongShortMemoryCourse, LongShortMemoryTask, scale_pixels

#: Minecraft 1.11 block names (minerl 0.4's game) of the course's parts; wool colours are data values.
BLOCKS = {
    "floor": "minecraft:stone",
    "wall": "minecraft:stone",
    "air": "minecraft:air",
    "diamond": "minecraft:diamond_block",
    "iron": "minecraft:iron_block",
    "green": "minecraft:wool 13",
    "red": "minecraft:wool 14",
    "hidden": "minecraft:wool 8",  # light grey: LSH shows no signal (its observation is blanked anyway)
    "end": "minecraft:gold_block",
}
#: Facing north (-z): forward is -z and right is +x.
YAW, PITCH = 180.0, 0.0


@dataclass(frozen=True)
class CourseLayout:
    """Where the course stands in the world: the agent's feet at room 1's first cell are ``origin``; room ``r``'s cell
    (x, y) is at ``origin + (x, 0, -(4 r + y))``, its column at (0, 2) two blocks high; signal cell ``i`` of ``n`` at
    ``origin + (-2 (n - i), 0, 2)`` facing its signal block; the end one block past the last room, facing a gold wall.

    :param origin: world position (x, y, z) of room 1's first cell
    """

    origin: tuple[int, int, int] = (0, 5, 0)

    def agent_position(self, course: LongShortMemoryCourse) -> tuple[int, int, int]:
        """Block position of the agent in the course's current situation."""
        x0, y0, z0 = self.origin
        situation = course.situation()
        if situation[0] == SIGNAL:
            return (x0 - 2 * (len(course.signal) - course.signal_cell), y0, z0 + 2)
        if situation[0] == ROOMS:
            x, y = course.cell
            return (x0 + x, y0, z0 - 4 * course.room - y)
        return (x0, y0, z0 - 4 * course.n_rooms)

    def teleport_command(self, course: LongShortMemoryCourse) -> str:
        """``/tp`` to the centre of the current cell, facing north."""
        x, y, z = self.agent_position(course)
        return f"/tp @p {x + 0.5} {y} {z + 0.5} {YAW} {PITCH}"

    def structure_commands(self, n_rooms: int, signal_cells: int) -> list[str]:
        """What does not change between episodes: cleared space, floor, side walls, the walls beside every room's
        entrance, the end wall."""
        x0, y0, z0 = self.origin
        far = z0 - 4 * n_rooms - 1
        west = x0 - 2 * signal_cells - 1
        commands = [
            f"/fill {west} {y0} {z0 + 3} {x0 + 2} {y0 + 2} {far} {BLOCKS['air']}",
            f"/fill {west} {y0 - 1} {z0 + 3} {x0 + 2} {y0 - 1} {far} {BLOCKS['floor']}",
            f"/fill {x0 - 2} {y0} {z0} {x0 - 2} {y0 + 1} {far} {BLOCKS['wall']}",
            f"/fill {x0 + 2} {y0} {z0} {x0 + 2} {y0 + 1} {far} {BLOCKS['wall']}",
            f"/fill {x0 - 1} {y0} {far} {x0 + 1} {y0 + 1} {far} {BLOCKS['end']}",
        ]
        for room in range(n_rooms):
            for side in (-1, 1):
                commands.append(
                    f"/fill {x0 + side} {y0} {z0 - 4 * room} {x0 + side} {y0 + 1} {z0 - 4 * room} {BLOCKS['wall']}"
                )
        return commands

    def episode_commands(self, course: LongShortMemoryCourse, hidden_signal: bool) -> list[str]:
        """What each episode draws anew: every room's column in its material and the signal blocks."""
        x0, y0, z0 = self.origin
        commands = []
        for room, room_type in enumerate(course.room_types):
            material = BLOCKS["diamond" if room_type == DIAMOND else "iron"]
            z = z0 - 4 * room - 2
            commands.append(f"/fill {x0} {y0} {z} {x0} {y0 + 1} {z} {material}")
        for cell, colour in enumerate(course.signal):
            x = x0 - 2 * (len(course.signal) - cell)
            block = BLOCKS["hidden" if hidden_signal else ("green" if colour == GREEN else "red")]
            commands.append(f"/setblock {x} {y0 + 1} {z0 + 1} {block}")
        return commands


def resize_image(image: np.ndarray, resolution: int) -> np.ndarray:
    """Nearest-neighbour resize of an (H, W, 3) image to (resolution, resolution, 3), sampling pixel centres."""
    height, width = image.shape[:2]
    rows = ((np.arange(resolution) + 0.5) * height / resolution).astype(np.int64)
    cols = ((np.arange(resolution) + 0.5) * width / resolution).astype(np.int64)
    return image[rows][:, cols]


class _DeclaredSpaces:
    """An old-gym env whose declared spaces keep only what gym and shimmy know (Box, Discrete, MultiDiscrete,
    MultiBinary, Dict, Tuple); everything else (minerl's ``Text`` of the ``chat`` action) is left out of the
    declaration but still passed through ``step``. shimmy's conversion raises on unknown spaces otherwise."""

    def __init__(self, env: Any):
        import gym  # old gym: minerl's

        known = (gym.spaces.Box, gym.spaces.Discrete, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)

        def keep(space: Any) -> Any:
            if isinstance(space, gym.spaces.Dict):
                kept = {key: keep(sub) for key, sub in space.spaces.items()}
                return gym.spaces.Dict({key: sub for key, sub in kept.items() if sub is not None})
            if isinstance(space, gym.spaces.Tuple):
                return gym.spaces.Tuple([keep(sub) for sub in space.spaces])
            return space if isinstance(space, known) else None

        self.env = env
        self.observation_space = keep(env.observation_space)
        self.action_space = keep(env.action_space)
        self.metadata = getattr(env, "metadata", {"render_modes": []})
        self.spec = getattr(env, "spec", None)
        self.render_mode = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)


def make_backend(env: Any = None, env_id: str | None = None, make_kwargs: dict[str, Any] | None = None) -> Any:
    """A gymnasium env (shimmy's ``GymV21CompatibilityV0``) around the old-gym minerl ``env``, or around
    ``gym.make(env_id)`` after importing minerl (which registers its ids with gym)."""
    try:
        from shimmy import GymV21CompatibilityV0
    except ImportError as error:
        raise ImportError('the minerl backend of MC-LS needs shimmy: pip install -e ".[minerl]"') from error
    if env is None:
        if env_id is None:
            raise ValueError("the minerl backend needs a minerl env id (env_id=...) or an old-gym env (env=...)")
        try:
            import minerl  # noqa: F401  (registers minerl's ids with gym)
        except ImportError as error:
            raise ImportError(
                "the minerl backend of MC-LS needs minerl (0.4.x, with Java 8), which cannot be installed on the "
                "machines this package is tested on; the drawn views (MCLS-v0 and its variants) need nothing. "
                "See the README's MC-LS section."
            ) from error
        import gym

        env = gym.make(env_id, **(make_kwargs or {}))
    return GymV21CompatibilityV0(env=_DeclaredSpaces(env))


class MineRLLongShortMemory(LongShortMemoryTask):
    """MC-LS with Minecraft's frames as the views, through minerl (see the module docstring).

    Same rules, rewards, tasks, variants, ``info`` and observation format as :class:`~envs.mc_ls.LongShortMemoryMaze`
    (pixels scaled to [-1, 1], ``resolution`` pixels a side, resized from minerl's ``pov``); LSH blanks the signal
    views and LSN adds noise as there. Each of the agent's steps is one minerl step: a teleport to the new cell when
    the agent moved, a no-op otherwise. Starting a course costs a few more minerl steps (one per room to set its
    column, one per signal cell) and the first reset builds the static course. minerl's own episode end (its time
    limit) ends the episode as truncated with ``info["minerl_done"]``, and the next reset starts a new minerl episode.

    :param env: an old-gym minerl env (or a stand-in with its format); otherwise one is made from ``env_id``
    :param env_id: minerl env id to ``gym.make`` (needs minerl importable)
    :param make_kwargs: keyword arguments of that ``gym.make``
    :param layout: where the course is built in the world
    :param variant: ``"LS"``, ``"LSN"``, ``"LSO"`` or ``"LSH"``
    :param resolution: pixels per side of the observation
    :param n_rooms: rooms (the variant's by default)
    :param noise_std: LSN's noise (the variant's by default)
    :param timeout: steps per episode
    :param task: a fixed signal
    :param render_mode: ``"rgb_array"`` (minerl's full frame) or ``"ansi"``
    """

    def __init__(
        self,
        env: Any = None,
        env_id: str | None = None,
        make_kwargs: dict[str, Any] | None = None,
        layout: CourseLayout | None = None,
        variant: str = "LS",
        resolution: int = 10,
        n_rooms: int | None = None,
        noise_std: float | None = None,
        timeout: int = 200,
        task: Any = None,
        render_mode: str | None = None,
    ):
        super().__init__(variant, resolution, n_rooms, noise_std, timeout, task, render_mode)
        self.layout = layout or CourseLayout()
        self.backend = make_backend(env, env_id, make_kwargs)
        observation_space, action_space = self.backend.observation_space, self.backend.action_space
        pov = observation_space.spaces.get("pov") if isinstance(observation_space, spaces.Dict) else None
        if not isinstance(pov, spaces.Box) or len(pov.shape) != 3 or pov.shape[-1] != 3:
            raise ValueError(
                f"the minerl backend needs an env observing an RGB 'pov' image (a Dict with a (H, W, 3) Box 'pov'); "
                f"got observation space {observation_space}"
            )
        raw_action_space = getattr(self.backend.gym_env.env, "action_space", None)
        if not (isinstance(action_space, spaces.Dict) and "chat" in getattr(raw_action_space, "spaces", {})):
            raise ValueError(
                "the minerl backend builds the course with chat commands: it needs an env with a 'chat' action "
                "(an env spec with ChatAction and commands allowed)"
            )
        self._noop = {key: _zero_action(space) for key, space in action_space.spaces.items()}
        self._pov: np.ndarray | None = None
        self._backend_live = False
        self._backend_done = False
        self._built = False

    def _send(self, command: str | None = None) -> None:
        action = dict(self._noop, chat=command or "")
        obs, _, terminated, truncated, _ = self.backend.step(action)
        self._pov = np.asarray(obs["pov"])
        self._backend_done = self._backend_done or bool(terminated or truncated)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None or not self._backend_live or self._backend_done:
            backend_seed = None if seed is None else int(np.random.SeedSequence(seed).generate_state(1)[0])
            obs, _ = self.backend.reset(seed=backend_seed)
            self._pov = np.asarray(obs["pov"])
            self._backend_live, self._backend_done, self._built = True, False, False
        return super().reset(seed=seed, options=options)

    def _start_course(self) -> None:
        commands = (
            [] if self._built else self.layout.structure_commands(self.variant.n_rooms, self.variant.signal_cells)
        )
        commands += self.layout.episode_commands(self.course, self.variant.hidden_signal)
        commands.append(self.layout.teleport_command(self.course))
        for command in commands:
            self._send(command)
        self._built = True

    def _after_step(self, moved: bool) -> None:
        self._send(self.layout.teleport_command(self.course) if moved else None)

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = super().step(action)
        if self._backend_done and not (terminated or truncated):
            truncated = True
            info["minerl_done"] = True
            info["episode_statistics"] = self.course.statistics()
        return obs, reward, terminated, truncated, info

    def _view(self) -> np.ndarray:
        return scale_pixels(resize_image(self._pov, self.resolution))

    def _render_picture(self) -> np.ndarray:
        return np.array(self._pov, dtype=np.uint8)

    def close(self) -> None:
        self.backend.close()
        super().close()


def _zero_action(space: spaces.Space) -> Any:
    """minerl's no-op value of one action entry."""
    if isinstance(space, spaces.Dict):
        return {key: _zero_action(sub) for key, sub in space.spaces.items()}
    if isinstance(space, spaces.Discrete):
        return int(space.start)
    return np.zeros(space.shape, space.dtype)
