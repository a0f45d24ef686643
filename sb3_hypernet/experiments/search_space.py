"""rl_zoo3's ``--optimize`` for this package's policies: sample a search space and merge it into the zoo entry.

rl_zoo3's stock ``ppo_lstm`` sampler draws a whole PPO configuration and replaces the entry's ``policy_kwargs``
with its own (``net_arch``, ``activation_fn``), which drops every keyword our policies need. With the launcher,

    python -m sb3_hypernet.train --algo meta_ppo_lstm --env GridNavi-v0 --gym-packages envs \\
        --conf-file zoo_configs/rnn_hn.yml -optimize --n-trials 20 --storage sweeps.log --study-name lr \\
        [--search-space space.yml]

samples only the search space (default: the learning rate, log-uniform over the papers' range 3e-5 to 3e-3) and
keeps everything else of the entry; ``policy_kwargs.<name>`` keys are merged into the entry's ``policy_kwargs``. A
search-space file maps keys to Optuna distributions::

    learning_rate: {type: float, low: 3.0e-5, high: 3.0e-3, log: true}
    ent_coef: {type: categorical, choices: [0.01, 0.1]}
    policy_kwargs.hyper_init: {type: categorical, choices: [bias, weight, hfi]}

``--trial-id`` / the best trial of a study load the same way (merged). For the papers' fixed grid with seeds and
learning curves, use :mod:`sb3_hypernet.sweep`.
"""

from __future__ import annotations

import os
from typing import Any

import optuna
import yaml
from rl_zoo3.exp_manager import ExperimentManager
from rl_zoo3.hyperparams_opt import HYPERPARAMS_SAMPLER
from rl_zoo3.utils import linear_schedule
from stable_baselines3.common.callbacks import EvalCallback

from sb3_hypernet.common.callbacks import BestModelForEvaluationCallback
from sb3_hypernet.experiments.zoo import load_hyperparams, merge_policy_kwargs

POLICY_PREFIX = "policy_kwargs."
#: The default search space: the learning rate over the papers' range (NeurIPS 2023 appendix 8.2).
DEFAULT_SPACE: dict[str, dict[str, Any]] = {"learning_rate": {"type": "float", "low": 3e-5, "high": 3e-3, "log": True}}
_KINDS = {"float": ("low", "high"), "int": ("low", "high"), "categorical": ("choices",)}


def check_space(space: dict[str, Any], where: str = "search space") -> dict[str, dict[str, Any]]:
    """The search space, checked: every key maps to ``{type: float|int|categorical, ...}`` with its arguments."""
    if not isinstance(space, dict) or not space:
        raise ValueError(f"{where}: expected a mapping of hyperparameter names to distributions")
    for name, spec in space.items():
        if not isinstance(spec, dict) or spec.get("type") not in _KINDS:
            raise ValueError(f"{where}: {name!r} needs type float, int or categorical, got {spec!r}")
        missing = [arg for arg in _KINDS[spec["type"]] if arg not in spec]
        extra = set(spec) - {"type", "log", "step", *_KINDS[spec["type"]]}
        if missing or extra:
            raise ValueError(f"{where}: {name!r} ({spec['type']}): missing {missing}, unknown {sorted(extra)}")
        if name.startswith(POLICY_PREFIX) and not name[len(POLICY_PREFIX) :]:
            raise ValueError(f"{where}: {name!r} names no policy keyword")
    return space


def load_space(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """A search space from a YAML file (module docstring)."""
    with open(path) as file:
        return check_space(yaml.safe_load(file), str(path))


def sample(trial: optuna.Trial, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One draw of the space: ``{name: value}`` with Optuna parameter names as the keys."""
    values = {}
    for name, spec in space.items():
        options = {k: v for k, v in spec.items() if k in ("log", "step")}
        if spec["type"] == "float":
            values[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]), **options)
        elif spec["type"] == "int":
            values[name] = trial.suggest_int(name, int(spec["low"]), int(spec["high"]), **options)
        else:
            values[name] = trial.suggest_categorical(name, spec["choices"])
    return values


def split_policy_keys(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(entry keys, policy keywords) of sampled values."""
    policy = {k[len(POLICY_PREFIX) :]: v for k, v in values.items() if k.startswith(POLICY_PREFIX)}
    return {k: v for k, v in values.items() if not k.startswith(POLICY_PREFIX)}, policy


class MetaExperimentManager(ExperimentManager):
    """rl_zoo3's ExperimentManager whose ``--optimize`` samples :attr:`search_space` and merges it into the entry, and
    whose ``best_model.zip`` is saved for evaluation, without optimiser state
    (:class:`~sb3_hypernet.common.callbacks.BestModelForEvaluationCallback`)."""

    search_space: dict[str, dict[str, Any]] = DEFAULT_SPACE

    def create_callbacks(self) -> None:
        super().create_callbacks()
        for callback in self.callbacks:
            if type(callback) is EvalCallback:
                # rl_zoo3 builds its EvalCallback inside this method; the subclass adds no state, only how
                # best_model.zip is saved, so the built instance takes its class.
                callback.__class__ = BestModelForEvaluationCallback

    def hyperparameters_optimization(self) -> None:
        # rl_zoo3's objective looks its sampler up by algorithm; this one sees the entry (one manager per process).
        HYPERPARAMS_SAMPLER[self.algo] = self._sample
        super().hyperparameters_optimization()

    def _sample(self, trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
        entry_keys, policy = split_policy_keys(sample(trial, self.search_space))
        if callable(self._hyperparams.get("learning_rate")) and "learning_rate" in entry_keys:
            entry_keys["learning_rate"] = linear_schedule(entry_keys["learning_rate"])  # the entry's lin_ schedule
        if policy:
            entry_keys["policy_kwargs"] = {**self._hyperparams.get("policy_kwargs", {}), **policy}
        return entry_keys

    def load_trial(self, storage: str, study_name: str, trial_id: int | None = None, convert: bool = True) -> dict:
        params = super().load_trial(storage, study_name, trial_id, convert=False)
        if not convert:
            return params
        entry_keys, policy = split_policy_keys(params)
        if policy:
            # Merged into the policy_kwargs the run uses: -params' if given (zoo applies them after the trial's),
            # else the entry's.
            custom = self.custom_hyperparams or {}
            base = custom.get("policy_kwargs")
            if base is None:
                base = load_hyperparams(self.config, self.env_name.gym_id, self.algo).get("policy_kwargs")
            entry_keys["policy_kwargs"] = merge_policy_kwargs(base, policy)
            if "policy_kwargs" in custom:
                custom["policy_kwargs"] = entry_keys["policy_kwargs"]
        return entry_keys


def use_search_space(argv: list[str]) -> list[str]:
    """``argv`` without ``--search-space FILE``, after loading the file into :class:`MetaExperimentManager`."""
    argv = list(argv)
    for i, arg in enumerate(argv):
        if arg == "--search-space" or arg.startswith("--search-space="):
            path = arg.split("=", 1)[1] if "=" in arg else argv[i + 1] if i + 1 < len(argv) else None
            if path is None:
                raise SystemExit("--search-space needs a YAML file")
            MetaExperimentManager.search_space = load_space(path)
            del argv[i : i + (1 if "=" in arg else 2)]
            break
    return argv
