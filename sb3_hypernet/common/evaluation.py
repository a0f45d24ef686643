"""Evaluation of meta-RL policies over meta-episodes (NeurIPS 2023 section 4).

Reports the return of each inner episode (the adaptation curve), the meta-episode return (their sum) and the
success rate where the benchmark defines one, each with a 68% bootstrap confidence interval of the mean.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml
from rl_zoo3.utils import get_saved_hyperparams
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize


def bootstrap_ci(
    values: np.ndarray, confidence: float = 0.68, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of ``values`` (the papers' 68% error bars)."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(values.size, size=(n_resamples, values.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)


class EvaluationSummary(dict):
    """:meth:`MetaEvaluation.summary`'s dict (JSON-ready, for code) that prints as the evaluator's table."""

    def __str__(self) -> str:
        return format_summary(self)


def format_summary(summary: dict[str, Any]) -> str:
    """A table of the means and confidence intervals of :meth:`MetaEvaluation.summary`."""
    pct = round(100 * summary["confidence"])
    lines = [f"{'':<26}{'mean':>10}   {pct}% CI"]

    def row(label: str, stats: dict[str, float]) -> str:
        return f"{label:<26}{stats['mean']:>10.3f}   [{stats['ci_low']:.3f}, {stats['ci_high']:.3f}]"

    labels = summary.get("inner_labels") or [f"episode {i}" for i in range(1, len(summary["inner_returns"]) + 1)]
    for label, stats in zip(labels, summary["inner_returns"], strict=True):
        lines.append(row(f"{label} return", stats))
    lines.append(
        row("meta-episode return" if "inner_labels" not in summary else "sum of returns", summary["meta_return"])
    )
    for i, stats in enumerate(summary.get("inner_successes", []), start=1):
        lines.append(row(f"episode {i} success", stats))
    if "success_rate" in summary:
        lines.append(row("success rate", summary["success_rate"]))
    for key, per_episode in summary.get("inner_statistics", {}).items():
        for i, stats in enumerate(per_episode, start=1):
            lines.append(row(f"episode {i} {key.replace('_', ' ')}", stats))
    reference = summary.get("reference")
    if reference:
        returns = ", ".join(f"{value:.2f}" for value in reference["inner_returns"])
        lines.append(
            f"{reference['label'] + ' return':<26}{reference['meta_return']:>10.3f}   (per episode {returns}); "
            f"measured {summary['meta_return']['mean']:.3f}"
        )
    return "\n".join(lines)


def rounded(value: Any, digits: int = 4) -> Any:
    """``value`` (nested dicts and lists) with every float rounded to ``digits`` decimals, for JSON output."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {key: rounded(item, digits) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(item, digits) for item in value]
    return value


@dataclass
class MetaEvaluation:
    """Results of :func:`evaluate_meta_policy`: one row per meta-episode, one column per inner episode."""

    inner_returns: np.ndarray
    inner_successes: np.ndarray | None = None
    tasks: list[Any] = field(default_factory=list)
    #: Per-episode numbers the benchmark reports (``info["episode_statistics"]``), each (meta-episodes, inner episodes).
    inner_statistics: dict[str, np.ndarray] = field(default_factory=dict)
    #: The benchmark's known reference, ``(label, return of each inner episode)``, if it has one.
    reference: tuple[str, list[float]] | None = None
    #: What each column is, when not an inner episode of a meta-episode (MAML: "pre-adaptation", "after 1 step").
    inner_labels: list[str] | None = None

    @property
    def meta_returns(self) -> np.ndarray:
        """Meta-episode returns (sum over inner episodes)."""
        return self.inner_returns.sum(axis=1)

    def __str__(self) -> str:
        return str(self.summary())

    def summary(self, confidence: float = 0.68, seed: int = 0) -> EvaluationSummary:
        """Means and bootstrap confidence intervals as a dict of plain Python numbers (JSON-ready), which prints as a
        table (``print(evaluation.summary())``)."""

        def stats(values: np.ndarray) -> dict[str, float]:
            values = values[np.isfinite(values)]  # a statistic may be undefined in some episodes (NaN)
            if values.size == 0:
                return {"mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
            low, high = bootstrap_ci(values, confidence, seed=seed)
            return {"mean": float(np.mean(values)), "ci_low": low, "ci_high": high}

        out = EvaluationSummary(
            {
                "n_meta_episodes": int(self.inner_returns.shape[0]),
                "confidence": confidence,
                "inner_returns": [stats(column) for column in self.inner_returns.T],
                **({"inner_labels": list(self.inner_labels)} if self.inner_labels else {}),
                "meta_return": stats(self.meta_returns),
            }
        )
        if self.inner_successes is not None:
            out["inner_successes"] = [stats(column) for column in self.inner_successes.T]
            # A meta-episode succeeds if its last inner episode does (the Meta-World protocol).
            out["success_rate"] = stats(self.inner_successes[:, -1])
        if self.inner_statistics:
            out["inner_statistics"] = {
                key: [stats(column) for column in values.T] for key, values in self.inner_statistics.items()
            }
        if self.reference is not None:
            label, returns = self.reference
            out["reference"] = {"label": label, "inner_returns": list(returns), "meta_return": float(sum(returns))}
        return out


def check_model_fits_env(model: BaseAlgorithm, env: VecEnv | gym.Env, env_name: str = "the environment") -> None:
    """Raise a ``ValueError`` naming the mismatch if ``model`` was trained on other spaces than ``env`` has."""
    for kind in ("observation", "action"):
        trained = getattr(model, f"{kind}_space")
        given = getattr(env, f"{kind}_space")
        if trained != given:
            raise ValueError(
                f"The model does not fit {env_name}: it was trained with {kind} space {trained}, "
                f"but {env_name} has {given}. Evaluate it on the environment (and env kwargs) it was trained on."
            )


#: What :func:`evaluate_meta_policy` accepts as ``env``: an id, an env, a VecEnv, or an env factory.
EnvLike = str | gym.Env | VecEnv | Callable[..., gym.Env]


def as_vec_env(env: EnvLike, n_envs: int = 1, env_kwargs: dict[str, Any] | None = None) -> VecEnv:
    """``env`` as a VecEnv: a VecEnv as it is, an env alone, an id or a factory as ``n_envs`` copies."""
    if isinstance(env, VecEnv):
        return env
    if isinstance(env, gym.Env):
        return DummyVecEnv([lambda: env])
    if isinstance(env, str):
        return DummyVecEnv([lambda: gym.make(env, **(env_kwargs or {})) for _ in range(n_envs)])
    if callable(env):

        def make() -> gym.Env:
            made = env(**(env_kwargs or {}))
            if not isinstance(made, gym.Env):
                raise TypeError(f"the env factory {env!r} returned a {type(made).__name__}, not a gym.Env")
            return made

        return DummyVecEnv([make] * n_envs)
    raise TypeError(
        "env must be a registered env id (str), a gym.Env, a VecEnv, or an env factory (a callable returning a "
        f"gym.Env, as for make_vec_env); got {type(env).__name__}"
    )


def evaluate_meta_policy(
    model: BaseAlgorithm,
    env: EnvLike,
    n_meta_episodes: int = 100,
    deterministic: bool = True,
    seed: int | None = 0,
    n_envs: int = 8,
    env_kwargs: dict[str, Any] | None = None,
) -> MetaEvaluation:
    """Run ``n_meta_episodes`` meta-episodes on freshly sampled tasks and collect per-inner-episode results.

    :param model: a trained RecurrentPPO (or anything with the recurrent ``predict`` interface)
    :param env: a meta-episode env id, an env, a VecEnv, or an env factory (a callable returning an env, as passed
        to ``make_vec_env``); the envs must be :class:`MetaEpisodeWrapper` envs
    :param n_meta_episodes: number of meta-episodes (each on a new task)
    :param deterministic: deterministic actions (the papers' protocol)
    :param seed: seeds task sampling and the envs; ``None`` leaves their generators as they are
    :param n_envs: envs run in parallel (in a ``DummyVecEnv``) when ``env`` is an id or a factory
    :param env_kwargs: keyword arguments of ``gym.make`` when ``env`` is an id, of the factory when it is one
    """
    if n_meta_episodes < 1 or n_envs < 1:
        raise ValueError(f"n_meta_episodes and n_envs must be >= 1, got {n_meta_episodes} and {n_envs}")
    # As SB3 does for training: image observations are transposed to channels-first (VecTransposeImage).
    vec_env = BaseAlgorithm._wrap_env(as_vec_env(env, min(n_envs, n_meta_episodes), env_kwargs), monitor_wrapper=False)
    check_model_fits_env(model, vec_env, env if isinstance(env, str) else "the environment")
    n = vec_env.num_envs
    # Fixed quotas per env, so that short meta-episodes are not over-represented (as SB3's evaluate_policy).
    quotas = np.array([(n_meta_episodes + i) // n for i in range(n)])
    counts = np.zeros(n, dtype=int)
    if seed is not None:
        vec_env.seed(seed)
    obs = vec_env.reset()
    state = None
    episode_start = np.ones(n, dtype=bool)
    returns: list[list[float]] = []
    successes: list[list[float]] = []
    statistics: list[list[dict[str, float]]] = []
    tasks: list[Any] = []
    while (counts < quotas).any():
        actions, state = model.predict(obs, state=state, episode_start=episode_start, deterministic=deterministic)
        obs, rewards, dones, infos = vec_env.step(actions)
        if not np.all(np.isfinite(rewards)):
            raise ValueError(f"non-finite reward during evaluation: {rewards}")
        for i in np.flatnonzero(dones):
            info = infos[i]
            if "inner_returns" not in info:
                raise ValueError(
                    "the evaluation env ended an episode without 'inner_returns' in info: it must be a "
                    "MetaEpisodeWrapper env (a registered meta-episode id such as GridNavi-v0)."
                )
            if counts[i] < quotas[i]:
                returns.append(info["inner_returns"])
                if "inner_successes" in info:
                    successes.append(info["inner_successes"])
                if "inner_statistics" in info:
                    statistics.append(info["inner_statistics"])
                tasks.append(info.get("task_descriptor"))
                counts[i] += 1
        episode_start = dones
    if len({len(r) for r in returns}) != 1:
        raise ValueError("meta-episodes have different numbers of inner episodes; cannot tabulate them")
    inner_successes = np.asarray(successes, dtype=np.float64) if len(successes) == len(returns) else None
    inner_statistics = {}
    if statistics and len(statistics) == len(returns):
        keys = [key for key in statistics[0][0] if all(key in episode for meta in statistics for episode in meta)]
        inner_statistics = {
            key: np.array([[episode[key] for episode in meta] for meta in statistics], dtype=np.float64) for key in keys
        }
    return MetaEvaluation(
        np.asarray(returns, dtype=np.float64), inner_successes, tasks, inner_statistics, _reference(vec_env)
    )


def _reference(vec_env: VecEnv) -> tuple[str, list[float]] | None:
    """The known reference that the meta-episode envs of ``vec_env`` report (``MetaEpisodeWrapper.reference_returns``),
    or ``None``."""
    try:
        reference = vec_env.env_method("reference_returns", indices=[0])[0]
    except AttributeError:
        return None
    return None if reference is None else (str(reference[0]), [float(value) for value in reference[1]])


class RandomPolicy:
    """Uniformly random actions behind the recurrent ``predict`` interface: the baseline for
    :func:`evaluate_meta_policy` (``evaluate_meta_policy(RandomPolicy.for_env("GridNavi-v0"), "GridNavi-v0")``)."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, seed: int = 0):
        self.observation_space = observation_space
        self.action_space = action_space
        self.action_space.seed(seed)

    @classmethod
    def for_env(cls, env_id: str, seed: int = 0, **env_kwargs: Any) -> RandomPolicy:
        """A random policy with the spaces of ``gym.make(env_id, **env_kwargs)``."""
        env = gym.make(env_id, **env_kwargs)
        return cls(env.observation_space, env.action_space, seed)

    def predict(
        self, observation: dict[str, np.ndarray], state: Any = None, episode_start: Any = None, deterministic=False
    ) -> tuple[np.ndarray, None]:
        n = len(next(iter(observation.values())))
        return np.stack([self.action_space.sample() for _ in range(n)]), None


def find_zoo_env_kwargs(model_path: str | os.PathLike) -> dict[str, Any]:
    """The env keyword arguments an rl_zoo3 run trained with (its config's ``env_kwargs``, then its command line's),
    read from ``<model without .zip>/config.yml`` and ``args.yml`` as ``rl_zoo3.enjoy`` reads them; {} if none."""
    run_folder = Path(model_path).with_suffix("")
    saved, _ = get_saved_hyperparams(str(run_folder))
    env_kwargs = dict(saved.get("env_kwargs") or {})
    args_file = run_folder / "args.yml"
    if args_file.is_file():
        with open(args_file) as file:
            env_kwargs.update(yaml.load(file, Loader=yaml.UnsafeLoader).get("env_kwargs") or {})
    return env_kwargs


def find_vecnormalize(model_path: str | os.PathLike) -> Path | None:
    """rl_zoo3 keeps VecNormalize statistics in ``<model without .zip>/vecnormalize.pkl``; that path if it exists."""
    candidate = Path(model_path).with_suffix("") / "vecnormalize.pkl"
    return candidate if candidate.exists() else None


def wrap_vecnormalize(vec_env: VecEnv, stats_path: str | os.PathLike) -> VecEnv:
    """Apply saved observation statistics for evaluation (frozen; rewards stay raw)."""
    normalized = VecNormalize.load(str(stats_path), vec_env)
    normalized.training = False
    normalized.norm_reward = False
    return normalized
