"""Walker rand-params (NeurIPS 2023, 8.6; from the rand_param_envs of the reference code): a 2-D walker whose
physics parameters are the task.

Built on gymnasium's ``Walker2d-v5`` (modern ``mujoco``). Dynamics differ from the 2019-era model of the reference
code (mujoco-py, gym 0.12), so absolute returns are comparable only among runs of this package.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import mujoco
import numpy as np
from gymnasium import spaces, utils
from gymnasium.envs.mujoco.walker2d_v5 import Walker2dEnv

from sb3_hypernet.common.task import TaskDistribution

#: The randomisable parameter groups, in the order of the task descriptor.
PARAM_GROUPS = ("body_mass", "body_inertia", "geom_friction", "dof_damping")


class WalkerRandParams(Walker2dEnv, TaskDistribution):
    """Walk forward with randomised body masses, inertias, frictions and joint dampings: the physics is the task.

    ## Description
    gymnasium's Walker2d-v5, whose MuJoCo model parameters are scaled per task as in the reference code's
    ``Walker2DRandParamsEnv``: every element of ``model.body_mass``, ``model.body_inertia`` and
    ``model.geom_friction`` is multiplied by its own ``scale_base ** U(-log_scale_limit, log_scale_limit)``
    (``1.5 ** U(-3, 3)``, i.e. between 0.30 and 3.375) and every element of ``model.dof_damping`` by
    ``damping_base ** U(-log_scale_limit, log_scale_limit)`` (``1.3 ** U(-3, 3)``, between 0.46 and 2.197),
    all sampled independently.

    The v5 model has 65 multipliers, as the reference model: ``body_mass`` (8 bodies), ``body_inertia`` (8 x 3),
    ``geom_friction`` (8 geoms x 3) and ``dof_damping`` (9 dofs), i.e. 8 + 24 + 24 + 9. Only 42 of them can change
    the dynamics: the world body (index 0) has zero mass and inertia and the root dofs (rootx, rootz, rooty) zero
    damping, and multiplying zero keeps zero (7 + 21 + 6 effective); every geom has ``condim=3``, so only the
    sliding friction (column 0) of the 8 geoms is used, and the torsional and rolling columns have no effect. A
    contact uses the larger sliding friction of its two geoms (floor, index 0, default 0.7; body geoms 0.9, feet 1.9).
    The multipliers of the three principal inertias of a body are independent, as in the reference, so a task can
    violate the triangle inequality of the inertia; MuJoCo simulates it without complaint.

    ## Action Space
    ``Box(-1, 1, (6,))``: torques of the six joints (as Walker2d-v5).

    ## Observation Space
    ``Box(-inf, inf, (17,))``: Walker2d-v5's observation (qpos without the x position: 8 values, then qvel
    clipped to [-10, 10]: 9).

    ## Rewards
    Walker2d-v5's: ``x_velocity + healthy_reward - ctrl_cost_weight * |a|^2``, with ``x_velocity`` the simulator's
    forward velocity of the torso over one control step, ``healthy_reward`` 1 (while healthy) and
    ``ctrl_cost_weight`` 1e-3. ``info`` carries ``x_velocity``, ``reward_forward``, ``reward_survive`` and
    ``reward_ctrl`` (as Walker2d-v5).

    ## Starting State, Episode End
    As Walker2d-v5 (uniform noise of scale 5e-3 on the initial qpos and qvel). Terminates unless
    ``0.8 < height < 2`` and ``|angle| < 1`` (torso height and pitch, ``qpos[1:3]``); registered with 200-step
    episodes.

    ## Arguments
    ``log_scale_limit`` (3.0): exponents are sampled from ``U(-log_scale_limit, log_scale_limit)``;
    ``scale_base`` (1.5): base of the multipliers of ``body_mass``, ``body_inertia`` and ``geom_friction``;
    ``damping_base`` (1.3): base of the ``dof_damping`` multipliers; ``rand_params`` (all four groups of
    ``PARAM_GROUPS``): which groups are randomised (the others keep their default values); ``task`` (a fixed
    task, else the unmodified model); and Walker2d-v5's keyword arguments.

    ## Task
    A dict mapping each randomised group to an array of positive multipliers of the group's shape (e.g.
    ``body_mass``: (8,), ``body_inertia``: (8, 3)). ``set_task`` writes ``default * multipliers`` into the model
    (the defaults are copies taken at construction, so tasks never drift), recomputes the model's derived
    constants with ``mujoco.mj_setConst`` and leaves the simulator's state as it was; ``reset()`` never changes
    the task. The task before any ``set_task`` is the unmodified model (all multipliers 1, :meth:`default_task`).
    ``task_descriptor()`` is the flat concatenation, in ``PARAM_GROUPS`` order, of the natural logarithms of the
    randomised groups' multipliers (float32, 65 values with all four groups), within ``task_space``:
    ``+-log_scale_limit * log(base)`` per element.
    """

    def __init__(
        self,
        log_scale_limit: float = 3.0,
        scale_base: float = 1.5,
        damping_base: float = 1.3,
        rand_params: Iterable[str] = PARAM_GROUPS,
        task: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        rand_params = tuple(rand_params)
        unknown = sorted(set(rand_params) - set(PARAM_GROUPS))
        if unknown or not rand_params:
            raise ValueError(
                f"rand_params must be a non-empty subset of {PARAM_GROUPS}; got {rand_params!r} (unknown: {unknown})"
            )
        if not log_scale_limit > 0 or not scale_base > 1 or not damping_base > 1:
            raise ValueError(
                "WalkerRandParams needs log_scale_limit > 0, scale_base > 1 and damping_base > 1; got "
                f"{log_scale_limit}, {scale_base}, {damping_base}"
            )
        utils.EzPickle.__init__(
            self,
            log_scale_limit=log_scale_limit,
            scale_base=scale_base,
            damping_base=damping_base,
            rand_params=rand_params,
            task=task,
            **kwargs,
        )
        self.log_scale_limit = float(log_scale_limit)
        self.scale_base = float(scale_base)
        self.damping_base = float(damping_base)
        self.rand_params = tuple(g for g in PARAM_GROUPS if g in rand_params)
        self.bases = {g: self.damping_base if g == "dof_damping" else self.scale_base for g in PARAM_GROUPS}
        self.default_params = {g: getattr(self.model, g).copy() for g in PARAM_GROUPS}
        self.param_shapes = {g: self.default_params[g].shape for g in self.rand_params}

        self._log_limits = np.concatenate(
            [
                np.full(int(np.prod(self.param_shapes[g])), self.log_scale_limit * np.log(self.bases[g]))
                for g in self.rand_params
            ]
        )
        limits32 = self._log_limits.astype(np.float32)
        self.task_space = spaces.Box(-limits32, limits32, dtype=np.float32)
        self._multipliers = self.default_task()
        if task is not None:
            self.set_task(task)

    @property
    def n_multipliers(self) -> int:
        """Number of multipliers in a task (65 with all four groups)."""
        return int(self._log_limits.size)

    @property
    def task(self) -> dict[str, np.ndarray]:
        """The current task (copies of the multipliers)."""
        return {g: m.copy() for g, m in self._multipliers.items()}

    def default_task(self) -> dict[str, np.ndarray]:
        """The unmodified model: all multipliers 1."""
        return {g: np.ones(self.param_shapes[g]) for g in self.rand_params}

    def sample_task(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        limit = self.log_scale_limit
        return {g: self.bases[g] ** rng.uniform(-limit, limit, size=self.param_shapes[g]) for g in self.rand_params}

    def set_task(self, task: Any) -> None:
        self._multipliers = self._validate_task(task)
        for group in PARAM_GROUPS:
            values = self.default_params[group]
            if group in self._multipliers:
                values = values * self._multipliers[group]
            getattr(self.model, group)[:] = values
        # mj_setConst recomputes the constants derived from masses and inertias (body_subtreemass,
        # dof_invweight0, actuator_acc0, stat.meaninertia, ...) but overwrites the state with qpos0: restore it.
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(self.model, spec))
        mujoco.mj_getState(self.model, self.data, state, spec)
        mujoco.mj_setConst(self.model, self.data)
        mujoco.mj_setState(self.model, self.data, state, spec)
        mujoco.mj_forward(self.model, self.data)

    def task_descriptor(self) -> np.ndarray:
        logs = np.concatenate([np.log(self._multipliers[g]).ravel() for g in self.rand_params])
        return np.clip(logs, -self._log_limits, self._log_limits).astype(np.float32)

    def _validate_task(self, task: Any) -> dict[str, np.ndarray]:
        if not isinstance(task, Mapping):
            raise ValueError(
                f"A WalkerRandParams task is a dict of multiplier arrays with keys {self.rand_params}; "
                f"got {type(task).__name__}"
            )
        if set(task) != set(self.rand_params):
            raise ValueError(
                f"A WalkerRandParams task needs exactly the keys {self.rand_params} (the randomised groups); "
                f"got {tuple(task)}"
            )
        multipliers = {}
        for group in self.rand_params:
            values = np.array(task[group], dtype=np.float64)
            if values.shape != self.param_shapes[group]:
                raise ValueError(
                    f"Task multipliers for {group} must have shape {self.param_shapes[group]}, got {values.shape}"
                )
            bound = self.log_scale_limit * np.log(self.bases[group])
            logs = np.log(values, where=values > 0, out=np.full(values.shape, -np.inf))
            if not np.all(np.abs(logs) <= bound * (1 + 1e-9)):
                raise ValueError(
                    f"Task multipliers for {group} must lie in [{self.bases[group]}**-{self.log_scale_limit}, "
                    f"{self.bases[group]}**{self.log_scale_limit}]; got values in [{values.min()}, {values.max()}]"
                )
            multipliers[group] = values
        return multipliers
