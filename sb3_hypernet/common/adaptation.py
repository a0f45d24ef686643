"""Meta-World's evaluation protocol for a recurrent meta-learner (Yu et al. 2020), on any task family.

Per task: ``adaptation_episodes`` inner episodes, then ``evaluation_episodes`` more, all on the same task with the
policy's hidden state kept from the first step to the last (one meta-episode of ``adaptation + evaluation``
inner episodes; ``metaworld.evaluation`` resets an agent's state between episodes, which would erase what a
recurrent meta-learner has adapted). An episode succeeds if any of its steps reports ``info["success"]``. A task's
success rate is the mean over its evaluation episodes; the benchmark's is the mean over classes of the mean over
their tasks, as ``metaworld.evaluation.metalearning_evaluation`` averages per class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_hypernet.common.evaluation import bootstrap_ci
from sb3_hypernet.common.meta_episode import make_meta_env
from sb3_hypernet.common.task import TASK_KEY


@dataclass
class AdaptationEvaluation:
    """Results per task: ``returns`` and ``successes`` are (n_tasks, adaptation + evaluation) arrays, one column
    per inner episode; ``classes`` names each task's class."""

    returns: np.ndarray
    successes: np.ndarray
    classes: list[str]
    adaptation_episodes: int

    @property
    def task_success_rates(self) -> np.ndarray:
        """Per task, the mean success of its evaluation episodes."""
        return self.successes[:, self.adaptation_episodes :].mean(axis=1)

    @property
    def class_success_rates(self) -> dict[str, float]:
        rates = self.task_success_rates
        return {name: float(rates[[c == name for c in self.classes]].mean()) for name in sorted(set(self.classes))}

    @property
    def success_rate(self) -> float:
        """Mean over classes of the mean success rate of their tasks (Meta-World's number)."""
        return float(np.mean(list(self.class_success_rates.values())))

    def summary(self, confidence: float = 0.68) -> dict[str, Any]:
        """Success rate and return per inner episode (mean and bootstrap CI over tasks), and the success rate."""

        def stats(values: np.ndarray) -> dict[str, float]:
            low, high = bootstrap_ci(values, confidence) if len(values) > 1 else (float("nan"), float("nan"))
            return {"mean": float(np.mean(values)), "ci_low": low, "ci_high": high}

        rates = self.task_success_rates
        return {
            "n_tasks": len(self.classes),
            "success_rate": self.success_rate,
            "success_rate_over_tasks": stats(rates),
            "class_success_rates": self.class_success_rates,
            "inner_returns": [stats(column) for column in self.returns.T],
            "inner_successes": [stats(column) for column in self.successes.T],
        }


def evaluate_adaptation(
    model: BaseAlgorithm,
    task_env_id: str,
    tasks: list[Any] | None = None,
    adaptation_episodes: int = 10,
    evaluation_episodes: int = 3,
    n_envs: int = 8,
    deterministic: bool = True,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
) -> AdaptationEvaluation:
    """Run the protocol on ``tasks`` of the raw task env ``task_env_id`` (e.g. ``"ML10Task-v0"`` with
    ``env_kwargs={"split": "test"}``): one meta-episode per task, ``n_envs`` at a time, actions from
    ``model.predict`` with its recurrent state.

    :param tasks: the tasks to run (for Meta-World, indices into the split's tasks); default: every task the env's
        ``tasks`` attribute lists, else ``ValueError``
    """
    if adaptation_episodes < 0 or evaluation_episodes < 1:
        raise ValueError("adaptation_episodes must be >= 0 and evaluation_episodes >= 1")
    n_episodes = adaptation_episodes + evaluation_episodes
    factory = lambda: make_meta_env(task_env_id, n_episodes=n_episodes, **(env_kwargs or {}))  # noqa: E731
    probe = factory()
    if tasks is None:
        if not hasattr(probe.unwrapped, "tasks"):
            raise ValueError(f"{task_env_id} lists no tasks: pass the tasks to evaluate")
        tasks = list(range(len(probe.unwrapped.tasks)))
    envs = [probe, *(factory() for _ in range(min(n_envs, len(tasks)) - 1))]
    for env in envs:
        if env.observation_space != model.observation_space:
            raise ValueError(
                f"The model does not fit {task_env_id}: it was trained with observation space "
                f"{model.observation_space}, but the env has {env.observation_space}."
            )
    queue = list(enumerate(tasks))
    returns = np.zeros((len(tasks), n_episodes))
    successes = np.zeros((len(tasks), n_episodes))
    classes: list[str] = [""] * len(tasks)
    running: list[int | None] = [None] * len(envs)
    observations: list[dict[str, np.ndarray] | None] = [None] * len(envs)
    state = None
    starts = np.ones(len(envs), dtype=bool)

    def start(slot: int) -> None:
        if not queue:
            running[slot] = None
            return
        index, task = queue.pop(0)
        running[slot] = index
        observations[slot], _ = envs[slot].reset(seed=seed + index, options={TASK_KEY: task})
        base = envs[slot].unwrapped
        classes[index] = getattr(base.tasks[task], "env_name", "") if hasattr(base, "tasks") else ""
        starts[slot] = True

    for slot in range(len(envs)):
        start(slot)
    idle = {key: np.zeros_like(value) for key, value in observations[0].items()}
    while any(index is not None for index in running):
        batch = {key: np.stack([(o if o is not None else idle)[key] for o in observations]) for key in idle}
        actions, state = model.predict(batch, state=state, episode_start=starts, deterministic=deterministic)
        starts[:] = False
        for slot, env in enumerate(envs):
            index = running[slot]
            if index is None:
                continue
            observations[slot], _, terminated, truncated, info = env.step(actions[slot])
            if terminated or truncated:
                returns[index] = info["inner_returns"]
                successes[index] = info.get("inner_successes", [0.0] * n_episodes)
                start(slot)
                if running[slot] is None:
                    observations[slot] = None
    for env in envs:
        env.close()
    return AdaptationEvaluation(returns, successes, classes, adaptation_episodes)
