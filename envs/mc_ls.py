"""MC-LS, the MineCraft long-short memory maze, and its variants LSN, LSO and LSH (NeurIPS 2023 section 4.3, Figure 7;
Beck et al. 2020 "AMRL").

The reference replays cached Minecraft screenshots; here the env draws its own small views, one per situation, so it
needs nothing beyond numpy. :class:`LongShortMemoryCourse` holds the rules (phases, moves, rewards, timeout) and is
shared with the Minecraft backend (:mod:`envs.mc_ls_minerl`), which plays the same rules in a real Minecraft world.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_hypernet.common.task import EPISODE_STATISTICS_KEY, TaskDistribution

LEFT, FORWARD, RIGHT = 0, 1, 2
ACTION_NAMES = ("left", "forward", "right")
RED, GREEN = 0, 1
COLOUR_NAMES = ("red", "green")
#: Room types: the column's material, which says on which side to pass it.
DIAMOND, IRON = 0, 1
MATERIAL_NAMES = ("diamond", "iron")
SIGNAL, ROOMS, END = 0, 1, 2

#: The cells of a room, (x, y): x is the side (-1 left, +1 right), y the depth; the column stands at (0, 2).
ROOM_CELLS = ((0, 0), (0, 1), (-1, 1), (1, 1), (-1, 2), (1, 2), (-1, 3), (1, 3), (0, 3))
MOVE_REWARD = 0.1
END_REWARD = 4.0
WRONG_END_REWARD = -3.0


@dataclass(frozen=True)
class Variant:
    """One variant of the maze (NeurIPS 2023 section 4.3)."""

    n_rooms: int
    signal_cells: int
    noise_std: float
    hidden_signal: bool


VARIANTS = {
    "LS": Variant(n_rooms=16, signal_cells=1, noise_std=0.0, hidden_signal=False),
    "LSN": Variant(n_rooms=10, signal_cells=1, noise_std=0.05, hidden_signal=False),
    "LSO": Variant(n_rooms=10, signal_cells=2, noise_std=0.0, hidden_signal=False),
    "LSH": Variant(n_rooms=16, signal_cells=1, noise_std=0.0, hidden_signal=True),
}


def goes_right(signal: tuple[int, ...]) -> bool:
    """Whether ``signal`` rewards the right side at the end: green with one signal cell; only (green, red) with two
    (LSO, where the other three orders mean left)."""
    if len(signal) == 1:
        return signal[0] == GREEN
    return tuple(signal) == (GREEN, RED)


class LongShortMemoryCourse:
    """The rules of one MC-LS episode: a signal platform, ``n_rooms`` rooms, and the end.

    - Signal platform (``signal_cells`` cells): only ``right`` moves; leaving its last cell enters room 1.
    - Room: from (0, 0) only forward; at (0, 1), the check, only left or right; at (+-1, 1) and (+-1, 2) only
      forward; at (-1, 3) only right and at (1, 3) only left, both to (0, 3); at (0, 3) only forward, which leaves the
      room (the next room's (0, 0), or the end after the last room). Other moves are blocked: nothing happens.
    - End: ``left`` or ``right`` ends the episode; ``forward`` does nothing.
    - Rewards: +0.1 for every move that changes the position, except the check (+0.1 if it goes to the column's side:
      diamond left, iron right; 0 otherwise) and the end (+4 if the side matches the signal, -3 otherwise). Blocked
      moves pay 0.
    - Timeout: the step that uses up ``timeout`` steps without reaching the end ends the episode (truncated) and
      pays 0.

    :param n_rooms: number of rooms
    :param signal: the signal colours, one per signal cell (``RED``/``GREEN``)
    :param room_types: the column material of each room (``DIAMOND``/``IRON``)
    :param timeout: steps per episode
    """

    def __init__(self, n_rooms: int, signal: tuple[int, ...], room_types: np.ndarray, timeout: int = 200):
        if len(room_types) != n_rooms:
            raise ValueError(f"need one room type per room ({n_rooms}), got {len(room_types)}")
        self.n_rooms = n_rooms
        self.signal = tuple(int(colour) for colour in signal)
        self.room_types = np.asarray(room_types, dtype=np.int64)
        self.timeout = timeout
        self.phase = SIGNAL
        self.signal_cell = 0
        self.room = 0
        self.cell = (0, 0)
        self.steps = 0
        self.rooms_passed = 0
        self.checks = 0
        self.checks_correct = 0
        self.end_side: int | None = None
        self.timed_out = False

    @property
    def rewarded_side(self) -> int:
        """``RIGHT`` or ``LEFT``: the end move that pays +4."""
        return RIGHT if goes_right(self.signal) else LEFT

    @property
    def done(self) -> bool:
        return self.end_side is not None or self.timed_out

    @property
    def end_correct(self) -> bool:
        return self.end_side == self.rewarded_side

    def situation(self) -> tuple[int, ...]:
        """What the agent's view shows: ``(SIGNAL, cell, colour)``, ``(ROOMS, room type, x, y)`` or ``(END,)``."""
        if self.phase == SIGNAL:
            return (SIGNAL, self.signal_cell, self.signal[self.signal_cell])
        if self.phase == ROOMS:
            return (ROOMS, int(self.room_types[self.room]), *self.cell)
        return (END,)

    def correct_actions(self) -> tuple[int, ...]:
        """The actions an agent that knows the signal takes here (the optimal policy)."""
        if self.phase == SIGNAL:
            return (RIGHT,)
        if self.phase == END:
            return (self.rewarded_side,)
        x, y = self.cell
        if (x, y) == (0, 1):
            return (LEFT,) if self.room_types[self.room] == DIAMOND else (RIGHT,)
        if y == 3 and x != 0:
            return (RIGHT,) if x < 0 else (LEFT,)
        return (FORWARD,)

    def step(self, action: int) -> tuple[float, bool, bool]:
        """Apply ``action``; returns (reward, terminated, truncated)."""
        if self.done:
            raise RuntimeError("MC-LS episode is over: reset before stepping")
        self.steps += 1
        reward = self._move(int(action))
        if self.end_side is not None:
            return reward, True, False
        if self.steps >= self.timeout:
            self.timed_out = True
            return 0.0, False, True
        return reward, False, False

    def _move(self, action: int) -> float:
        if self.phase == SIGNAL:
            if action != RIGHT:
                return 0.0
            self.signal_cell += 1
            if self.signal_cell == len(self.signal):
                self.phase, self.room, self.cell = ROOMS, 0, (0, 0)
            return MOVE_REWARD
        if self.phase == END:
            if action == FORWARD:
                return 0.0
            self.end_side = action
            return END_REWARD if self.end_correct else WRONG_END_REWARD
        x, y = self.cell
        if (x, y) == (0, 1):
            if action == FORWARD:
                return 0.0
            side = -1 if action == LEFT else 1
            self.cell = (side, 1)
            self.checks += 1
            column_side = -1 if self.room_types[self.room] == DIAMOND else 1
            if side == column_side:
                self.checks_correct += 1
                return MOVE_REWARD
            return 0.0
        if y == 3 and x != 0:
            if action != (RIGHT if x < 0 else LEFT):
                return 0.0
            self.cell = (0, 3)
            return MOVE_REWARD
        if action != FORWARD:
            return 0.0
        if (x, y) == (0, 3):
            self.rooms_passed += 1
            if self.room + 1 == self.n_rooms:
                self.phase = END
            else:
                self.room, self.cell = self.room + 1, (0, 0)
        else:
            self.cell = (x, 1) if (x, y) == (0, 0) else (x, y + 1)
        return MOVE_REWARD

    def statistics(self) -> dict[str, float]:
        """What the episode shows of the agent's memory: rooms passed; check accuracy (the share of checks that went
        to the column's side; NaN without a check); whether it reached the end; end-choice accuracy (1 if it chose the
        signalled side, 0 if the other; NaN if it never got there: the long-term memory)."""
        reached = self.end_side is not None
        return {
            "rooms_passed": float(self.rooms_passed),
            "check_accuracy": self.checks_correct / self.checks if self.checks else float("nan"),
            "end_reached": float(reached),
            "end_choice_accuracy": float(self.end_correct) if reached else float("nan"),
        }


def optimal_episode_return(variant: str | Variant) -> float:
    """Return of one episode of the optimal policy that knows the signal: 0.1 per signal cell, 0.6 per room, +4."""
    spec = VARIANTS[variant] if isinstance(variant, str) else variant
    return round(MOVE_REWARD * (spec.signal_cells + 6 * spec.n_rooms) + END_REWARD, 6)


def reference_episode_returns(variant: str | Variant, n_episodes: int) -> tuple[str, list[float]]:
    """The best expected return of each episode of a meta-episode: the optimal return for LS, LSN and LSO (the signal
    is seen in every episode); for LSH the Bayes-optimal one, whose first episode can only guess the side (expected
    end reward (4 - 3) / 2) and whose later episodes are optimal."""
    spec = VARIANTS[variant] if isinstance(variant, str) else variant
    best = optimal_episode_return(spec)
    if not spec.hidden_signal:
        return "optimal", [best] * n_episodes
    guess = round(best - END_REWARD + (END_REWARD + WRONG_END_REWARD) / 2, 6)
    return "Bayes-optimal", [guess] + [best] * (n_episodes - 1)


# Colours of the views (RGB, 0-255), chosen to stay apart after the (x - 128) / 128 scaling and at 10x10 pixels.
_FLOOR = (120, 96, 64)
_WALL = (40, 40, 40)
_AGENT = (40, 80, 230)
_MATERIAL = {DIAMOND: (90, 230, 220), IRON: (216, 216, 216)}
_SIGNAL = {RED: (210, 40, 40), GREEN: (40, 200, 40)}
_PLATFORM = (150, 150, 150)
_GOLD = (245, 200, 40)
_HIDDEN = (128, 128, 128)


def _room_map(room_type: int, cell: tuple[int, int] | None) -> np.ndarray:
    """Top-down map of a room, (4 depth rows, far first) x (3 sides) x RGB, with the agent at ``cell``."""
    grid = np.empty((4, 3, 3), np.uint8)
    grid[:] = _FLOOR
    grid[3, 0] = grid[3, 2] = _WALL  # (+-1, 0) are not in the room
    grid[1, 1] = _MATERIAL[room_type]  # the column at (0, 2)
    if cell is not None:
        grid[3 - cell[1], cell[0] + 1] = _AGENT
    return grid


def _raster(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour scaling of a small colour grid to (height, width, 3)."""
    rows = np.arange(height) * grid.shape[0] // height
    cols = np.arange(width) * grid.shape[1] // width
    return grid[rows][:, cols]


def draw_view(situation: tuple[int, ...], resolution: int, hidden_signal: bool = False) -> np.ndarray:
    """The agent's view of ``situation`` (see :meth:`LongShortMemoryCourse.situation`) as uint8 RGB."""
    kind = situation[0]
    if kind == SIGNAL:
        grid = np.empty((3, 3, 3), np.uint8)
        grid[:] = _HIDDEN if hidden_signal else _PLATFORM
        if not hidden_signal:
            grid[1, 1] = grid[0, 1] = _SIGNAL[situation[2]]
    elif kind == ROOMS:
        grid = _room_map(situation[1], situation[2:])
    else:
        grid = np.empty((3, 3, 3), np.uint8)
        grid[:] = _GOLD
        grid[1, 1] = _WALL
    return _raster(grid, resolution, resolution)


def scale_pixels(image: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 in [-1, 1): ``(x - 128) / 128``, as the reference."""
    return (image.astype(np.float32) - 128.0) / 128.0


class LongShortMemoryTask(gym.Env, TaskDistribution):
    """The MC-LS task without its views: the task interface, the rules (:class:`LongShortMemoryCourse`), the
    observation's variant handling (LSH's blank signal, LSN's noise), ``info`` and the text rendering. Subclasses say
    what the agent sees (:meth:`_view`): :class:`LongShortMemoryMaze` draws it, the Minecraft backend
    (:class:`envs.mc_ls_minerl.MineRLLongShortMemory`) takes Minecraft's frame. Arguments as
    :class:`LongShortMemoryMaze`'s.
    """

    metadata = {"render_modes": ["rgb_array", "ansi"], "render_fps": 4}

    def __init__(
        self,
        variant: str = "LS",
        resolution: int = 10,
        n_rooms: int | None = None,
        noise_std: float | None = None,
        timeout: int = 200,
        task: Any = None,
        render_mode: str | None = None,
    ):
        if variant not in VARIANTS:
            raise ValueError(f"MC-LS variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        spec = VARIANTS[variant]
        if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or resolution < 4:
            raise ValueError(f"MC-LS resolution must be an integer >= 4 (pixels per side), got {resolution!r}")
        n_rooms = spec.n_rooms if n_rooms is None else n_rooms
        if isinstance(n_rooms, bool) or not isinstance(n_rooms, (int, np.integer)) or n_rooms < 1:
            raise ValueError(f"MC-LS n_rooms must be an integer >= 1, got {n_rooms!r}")
        noise_std = spec.noise_std if noise_std is None else float(noise_std)
        if not np.isfinite(noise_std) or noise_std < 0:
            raise ValueError(f"MC-LS noise_std must be a finite number >= 0, got {noise_std!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, np.integer)) or timeout < 1:
            raise ValueError(f"MC-LS timeout must be an integer >= 1, got {timeout!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"MC-LS render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.variant = Variant(int(n_rooms), spec.signal_cells, noise_std, spec.hidden_signal)
        self.variant_name = variant
        self.resolution = int(resolution)
        self.timeout = int(timeout)
        self.render_mode = render_mode
        self.observation_space = spaces.Box(-1.0, 1.0, (self.resolution, self.resolution, 3), np.float32)
        self.action_space = spaces.Discrete(3)
        self.task_space = spaces.Box(0.0, 1.0, (spec.signal_cells,), np.float32)
        self._signal: tuple[int, ...] | None = None
        self.course: LongShortMemoryCourse | None = None
        if task is not None:
            self.set_task(task)

    # -- task distribution -------------------------------------------------------------------------------------
    def sample_task(self, rng: np.random.Generator) -> tuple[int, ...]:
        """A colour per signal cell, each red or green with probability 1/2 (so LSO's (green, red) has 1/4)."""
        return tuple(int(colour) for colour in rng.integers(2, size=self.variant.signal_cells))

    def set_task(self, task: Any) -> None:
        """Set the signal: one colour (0 red, 1 green) per signal cell."""
        values = np.asarray(task, dtype=np.float64).reshape(-1)
        if values.shape != (self.variant.signal_cells,) or not np.isin(values, (RED, GREEN)).all():
            raise ValueError(
                f"MC-LS {self.variant_name} task must be {self.variant.signal_cells} signal colour(s), each 0 (red) "
                f"or 1 (green), got {task!r}"
            )
        self._signal = tuple(int(colour) for colour in values)

    def task_descriptor(self) -> np.ndarray:
        """The signal colours as float32."""
        return np.asarray(self._signal, dtype=np.float32)

    def reference_returns(self, n_episodes: int) -> tuple[str, list[float]]:
        """The best expected return of each of ``n_episodes`` episodes with one signal (see
        :func:`reference_episode_returns`), for evaluators to print beside measured returns."""
        return reference_episode_returns(self.variant, n_episodes)

    # -- gymnasium API -----------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if self._signal is None:
            self.set_task(self.sample_task(self.np_random))
        room_types = (options or {}).get("room_types")
        if room_types is None:
            room_types = self.np_random.integers(2, size=self.variant.n_rooms)
        else:
            room_types = np.asarray(room_types)
            if room_types.shape != (self.variant.n_rooms,) or not np.isin(room_types, (DIAMOND, IRON)).all():
                raise ValueError(
                    f"options['room_types'] must hold {self.variant.n_rooms} room types, each 0 (diamond) or 1 "
                    f"(iron), got {room_types!r}"
                )
        self.course = LongShortMemoryCourse(self.variant.n_rooms, self._signal, room_types, self.timeout)
        self._start_course()
        return self._observation(), {"success": 0.0}

    def step(self, action: Any):
        if not self.action_space.contains(action):
            raise ValueError(f"MC-LS action must be an integer in [0, 3), got {action!r}")
        if self.course is None:
            raise RuntimeError("MC-LS: call reset() before step()")
        before = self.course.situation()
        reward, terminated, truncated = self.course.step(int(action))
        self._after_step(self.course.situation() != before)
        info: dict[str, Any] = {"success": float(self.course.end_correct)}
        if terminated or truncated:
            info[EPISODE_STATISTICS_KEY] = self.course.statistics()
        return self._observation(), reward, terminated, truncated, info

    @abc.abstractmethod
    def _view(self) -> np.ndarray:
        """What the agent sees in the current situation (``self.course.situation()``): float32 pixels in [-1, 1] of
        shape ``observation_space.shape``, without LSN's noise."""

    def _start_course(self) -> None:
        """Called when a new course (episode) starts, before its first view (a world to build: override)."""

    def _after_step(self, moved: bool) -> None:
        """Called after every step, before its view; ``moved``: the situation changed (override to follow it)."""

    def _observation(self) -> np.ndarray:
        if self.variant.hidden_signal and self.course.phase == SIGNAL:
            view = np.zeros(self.observation_space.shape, np.float32)
        else:
            view = self._view()
        if not self.variant.noise_std:
            return view
        noise = self.np_random.normal(0.0, self.variant.noise_std, view.shape).astype(np.float32)
        return np.clip(view + noise, -1.0, 1.0)

    def render(self) -> str | np.ndarray | None:
        """``ansi``: one line of text; ``rgb_array``: :meth:`_render_picture`."""
        if self.course is None or self.render_mode is None:
            return None
        course = self.course
        if self.render_mode == "ansi":
            where = {
                SIGNAL: f"signal cell {course.signal_cell + 1}/{len(course.signal)}",
                ROOMS: f"room {course.room + 1}/{course.n_rooms} "
                f"({MATERIAL_NAMES[course.room_types[course.room]]} column) cell {course.cell}",
                END: "end",
            }[course.phase]
            signal = ", ".join(COLOUR_NAMES[colour] for colour in course.signal)
            return (
                f"signal {signal} (go {ACTION_NAMES[course.rewarded_side]}) | {where} | step {course.steps}/"
                f"{course.timeout} | rooms passed {course.rooms_passed}, checks {course.checks_correct}/{course.checks}"
            )
        return self._render_picture()

    @abc.abstractmethod
    def _render_picture(self) -> np.ndarray:
        """The ``rgb_array`` rendering."""


class LongShortMemoryMaze(LongShortMemoryTask):
    """MC-LS: pass a row of rooms, then choose the side that a signal shown at the start asked for.

    ## Description
    The long-short memory task of Beck et al. 2020 (AMRL), as in NeurIPS 2023 section 4.3. An episode
    starts on a signal platform whose colour (the task) says which side pays at the end: green right, red left. The
    agent then passes ``n_rooms`` rooms; each has a column of diamond (pass it on the left) or iron (on the right)
    that is visible in every view of the room, so the short-term memory demand is small. After the last room it
    chooses a side. The signal is fixed across the episodes of a meta-episode; the room types are redrawn at every
    reset, independent of the signal. The rules are :class:`LongShortMemoryCourse`'s.

    ## Variants
    ``"LS"`` (16 rooms, the paper's Figure 7), ``"LSN"`` (10 rooms, Gaussian pixel noise of sd 0.05), ``"LSO"`` (10
    rooms, two signal cells: right only for (green, red), which has probability 1/4), ``"LSH"`` (16 rooms, the
    signal view is blank: find the side in the first episode and remember it in the second).

    ## Action Space
    ``Discrete(3)``: 0 left, 1 forward, 2 right.

    ## Observation Space
    ``Box(-1, 1, (resolution, resolution, 3), float32)``: the RGB view, pixels scaled ``(x - 128) / 128``. On the
    signal platform: the signal colour on grey (blank in LSH); in a room: a top-down map of the room with the
    column's material and the agent's cell; at the end: a gold view. Every two situations in which the right actions
    differ look different. LSN adds N(0, 0.05) noise and clips to [-1, 1].

    ## Rewards
    +0.1 per move that changes the position (the check at the room's second cell pays it only on the column's
    side); +4 for the signalled side at the end, -3 for the other; 0 for blocked moves and the timeout step.
    Optimal return per episode: 13.7 (LS, 98 steps), 10.1 (LSN), 10.2 (LSO); LSH's Bayes-optimal first episode 10.2.

    ## Starting State
    The first signal cell. Room types drawn uniformly by the env's generator (``reset(options={"room_types": ...})``
    fixes them).

    ## Episode End
    Terminated by the end choice; truncated when ``timeout`` steps are used (reward 0 on that step).

    ## Arguments
    ``variant`` ("LS"), ``resolution`` (10; AMRL used 42), ``n_rooms`` and ``noise_std`` (the variant's by default),
    ``timeout`` (200), ``task`` (a fixed signal).

    ## Task
    The signal: a tuple of colours (0 red, 1 green), one per signal cell; ``task_descriptor()`` is the same as
    float32.

    ``info`` on every step has ``success`` (1.0 once the signalled side is chosen) and, on the episode's last step,
    ``episode_statistics``: rooms passed, check accuracy, end reached and end-choice accuracy
    (:meth:`LongShortMemoryCourse.statistics`), which meta-episode evaluation reports per inner episode.

    ## Version History
    v0: initial version.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._views: dict[tuple[int, ...], np.ndarray] = {}

    def _view(self) -> np.ndarray:
        situation = self.course.situation()
        view = self._views.get(situation)
        if view is None:
            view = self._views[situation] = scale_pixels(draw_view(situation, self.resolution))
        return view.copy()

    def _render_picture(self) -> np.ndarray:
        """The agent's view at about 120 pixels a side above a map of the whole course: the signal, every room's
        column and the agent's position, the end."""
        course = self.course
        cell_px = 8
        view = draw_view(course.situation(), self.resolution, self.variant.hidden_signal)
        view = np.kron(view, np.ones((max(1, 120 // self.resolution),) * 2 + (1,), np.uint8))
        tiles = []
        for index, colour in enumerate(course.signal):
            tile = np.empty((4, 3, 3), np.uint8)
            tile[:] = _PLATFORM
            tile[1:3, 1] = _SIGNAL[colour]
            if course.phase == SIGNAL and course.signal_cell == index:
                tile[3, 1] = _AGENT
            tiles.append(tile)
        for room, room_type in enumerate(course.room_types):
            here = course.phase == ROOMS and course.room == room
            tiles.append(_room_map(int(room_type), course.cell if here else None))
        end = np.empty((4, 3, 3), np.uint8)
        end[:] = _GOLD
        if course.phase == END:
            end[1:3, 1] = _AGENT
        tiles.append(end)
        gap = np.full((4, 1, 3), 255, np.uint8)
        strip = np.concatenate([part for tile in tiles for part in (tile, gap)][:-1], axis=1)
        strip = np.kron(strip, np.ones((cell_px, cell_px, 1), np.uint8))
        width = max(view.shape[1], strip.shape[1])
        canvas = np.full((view.shape[0] + cell_px + strip.shape[0], width, 3), 255, np.uint8)
        canvas[: view.shape[0], : view.shape[1]] = view
        canvas[view.shape[0] + cell_px :, : strip.shape[1]] = strip
        return canvas
