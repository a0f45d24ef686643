"""Reading rl_zoo3 hyperparameter files and building the same RecurrentPPO model from Python.

rl_zoo3 itself is the way to train (``python -m rl_zoo3.train --algo ppo_lstm --conf-file zoo_configs/...``);
this module lets benchmark scripts and sweeps start from exactly the same YAML entries, and checks every key of
an entry so that a typo is an error rather than a silently ignored setting.
"""

from __future__ import annotations

import difflib
import inspect
import os
from typing import Any

import yaml
from rl_zoo3.utils import get_callback_list, get_class_by_name, get_wrapper_class, linear_schedule
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

#: Keys rl_zoo3 interprets itself; every other key of an entry goes to the algorithm's constructor.
ZOO_KEYS = frozenset(
    {
        "n_timesteps",
        "n_envs",
        "policy",
        "normalize",
        "env_wrapper",
        "vec_env_wrapper",
        "callback",
        "frame_stack",
        "env_kwargs",
        "eval_env_kwargs",
        "monitor_kwargs",
    }
)
#: Zoo keys that build_model does not reproduce (rl_zoo3 itself handles them).
_UNSUPPORTED = ("frame_stack", "vec_env_wrapper")
#: Hyperparameters rl_zoo3 accepts as "lin_<start>": a schedule decaying linearly to 0.
_SCHEDULES = ("learning_rate", "clip_range", "clip_range_vf")


def _algorithm_keys() -> set[str]:
    return set(inspect.signature(RecurrentPPO.__init__).parameters) - {"self", "env"}


def load_hyperparams(conf_file: str | os.PathLike, env_id: str) -> dict[str, Any]:
    """The entry for ``env_id`` of an rl_zoo3 YAML file; ``ValueError`` for a missing entry or an unknown key."""
    with open(conf_file) as file:
        config = yaml.safe_load(file) or {}
    if env_id not in config:
        raise ValueError(f"{conf_file} has no entry for {env_id!r}; it has: {', '.join(sorted(config))}")
    hyperparams = dict(config[env_id])
    known = ZOO_KEYS | _algorithm_keys()
    for key in hyperparams:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{conf_file}, {env_id}: unknown hyperparameter {key!r}{hint}")
    return hyperparams


def _evaluated(value: Any) -> Any:
    # rl_zoo3 writes dicts as Python expressions in strings ("dict(...)"), with get_class_by_name in scope.
    return eval(value, {"get_class_by_name": get_class_by_name}) if isinstance(value, str) else value


def build_model(
    hyperparams: dict[str, Any],
    env_id: str,
    seed: int = 0,
    device: str = "cpu",
    verbose: int = 0,
    tensorboard_log: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    **overrides: Any,
) -> tuple[RecurrentPPO, list[BaseCallback]]:
    """Build the RecurrentPPO model (and its callbacks) that ``rl_zoo3.train`` builds for this entry.

    ``overrides`` replace algorithm hyperparameters (e.g. ``learning_rate``); ``env_kwargs`` add to the entry's.
    ``"lin_<value>"`` schedules are supported; ``frame_stack`` and ``vec_env_wrapper`` are not (a ``ValueError``).
    """
    hyperparams = {**hyperparams, **overrides}
    unsupported = [key for key in _UNSUPPORTED if key in hyperparams]
    if unsupported:
        raise ValueError(f"build_model does not support {', '.join(unsupported)}: train this entry with rl_zoo3")
    algo_kwargs = {k: v for k, v in hyperparams.items() if k not in ZOO_KEYS}
    for key in _SCHEDULES:
        if isinstance(algo_kwargs.get(key), str) and algo_kwargs[key].startswith("lin_"):
            algo_kwargs[key] = linear_schedule(float(algo_kwargs[key][len("lin_") :]))
    unknown = set(algo_kwargs) - _algorithm_keys()
    if unknown:
        raise ValueError(f"unknown RecurrentPPO hyperparameter(s): {', '.join(sorted(unknown))}")
    if "policy_kwargs" in algo_kwargs:
        algo_kwargs["policy_kwargs"] = _evaluated(algo_kwargs["policy_kwargs"])
    policy = hyperparams.get("policy", "MultiInputLstmPolicy")
    if isinstance(policy, str) and "." in policy:
        policy = get_class_by_name(policy)
    env: VecEnv = make_vec_env(
        env_id,
        n_envs=int(hyperparams.get("n_envs", 1)),
        seed=seed,
        wrapper_class=get_wrapper_class(hyperparams),
        env_kwargs={**_evaluated(hyperparams.get("env_kwargs", {})), **(env_kwargs or {})},
        monitor_kwargs=_evaluated(hyperparams.get("monitor_kwargs", {})),
    )
    normalize = hyperparams.get("normalize", False)
    if normalize:
        normalize_kwargs = _evaluated(normalize) if normalize is not True else {}
        if "gamma" in hyperparams:
            normalize_kwargs["gamma"] = hyperparams["gamma"]
        env = VecNormalize(env, **normalize_kwargs)
    model = RecurrentPPO(
        policy, env, seed=seed, device=device, verbose=verbose, tensorboard_log=tensorboard_log, **algo_kwargs
    )
    return model, get_callback_list(hyperparams)
