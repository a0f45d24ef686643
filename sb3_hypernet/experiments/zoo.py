"""rl_zoo3 hyperparameter files: check their keys, and build the model rl_zoo3 builds from them.

rl_zoo3 itself is the way to train (``python -m rl_zoo3.train --algo ppo_lstm --conf-file zoo_configs/...``).
:func:`build_model` gives benchmark scripts and sweeps exactly the same model from Python by driving rl_zoo3's own
``ExperimentManager`` (schedules, normalisation, ``policy_kwargs``, wrappers and callbacks are all zoo's code), so
there is one source of truth for what an entry means. :func:`load_hyperparams` checks every key of an entry, so a
typo is an error rather than a silently ignored setting.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import os
import sys
from typing import Any

import torch as th
import yaml
from rl_zoo3 import ALGOS
from rl_zoo3.exp_manager import ExperimentManager
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from sb3_hypernet.common.array_vec_env import array_vec_env
from sb3_hypernet.common.policy_keywords import constructor_keywords
from sb3_hypernet.experiments.configs import zoo_config
from sb3_hypernet.maml.maml import MAML
from sb3_hypernet.meta_ppo.meta_ppo import MetaRecurrentPPO
from sb3_hypernet.pearl.pearl import PEARL

#: The algorithms this package adds to rl_zoo3's --algo choices.
ALGORITHMS = {"meta_ppo_lstm": MetaRecurrentPPO, "pearl": PEARL, "maml": MAML}

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
        "noise_type",  # rl_zoo3 builds the off-policy algorithms' action_noise from these two
        "noise_std",
    }
)


def register_algorithms() -> None:
    """Add :data:`ALGORITHMS` to rl_zoo3's table (``rl_zoo3.ALGOS``), as ``python -m sb3_hypernet.train`` does before
    zoo reads its command line."""
    for name, algorithm in ALGORITHMS.items():
        ALGOS.setdefault(name, algorithm)


register_algorithms()


def _algorithm_keys(algo: str) -> set[str]:
    if algo not in ALGOS:
        raise ValueError(f"unknown rl_zoo3 algorithm {algo!r}; registered: {', '.join(sorted(ALGOS))}")
    return constructor_keywords(ALGOS[algo]) - {"env"}


def check_hyperparams(hyperparams: dict[str, Any], where: str, algo: str = "ppo_lstm") -> None:
    """``ValueError`` naming the first key that is neither a zoo key nor an argument of ``algo``'s constructor."""
    known = ZOO_KEYS | _algorithm_keys(algo)
    for key in hyperparams:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"{where}: unknown hyperparameter {key!r}{hint}")


def entry_algorithm(hyperparams: dict[str, Any]) -> str:
    """The rl_zoo3 algorithm an entry is written for: ``ppo_lstm`` (sb3-contrib's RecurrentPPO) if RecurrentPPO takes
    every key, else ``meta_ppo_lstm`` (its keys include MetaRecurrentPPO's own, e.g. ``value_loss``)."""
    return "ppo_lstm" if set(hyperparams) <= ZOO_KEYS | _algorithm_keys("ppo_lstm") else "meta_ppo_lstm"


def load_hyperparams(conf_file: str | os.PathLike, env_id: str, algo: str | None = None) -> dict[str, Any]:
    """The entry for ``env_id`` of an rl_zoo3 YAML file (a path, or a method name of the package's configs,
    :func:`~sb3_hypernet.experiments.configs.zoo_config`); ``ValueError`` for a missing file or entry, or an unknown
    key of ``algo`` (by default the algorithm the entry is written for, :func:`entry_algorithm`)."""
    conf_file = zoo_config(conf_file)
    with open(conf_file) as file:
        config = yaml.safe_load(file) or {}
    if env_id not in config:
        raise ValueError(f"{conf_file} has no entry for {env_id!r}; it has: {', '.join(sorted(config))}")
    hyperparams = dict(config[env_id])
    check_hyperparams(hyperparams, f"{conf_file}, {env_id}", algo or entry_algorithm(hyperparams))
    return hyperparams


def merge_policy_kwargs(value: str | dict[str, Any] | None, extra: dict[str, Any]) -> str | dict[str, Any]:
    """An entry's ``policy_kwargs`` with ``extra`` merged in (``extra`` wins), in the form the entry had: rl_zoo3's
    string (evaluated by zoo) stays a string, ``dict(<entry>, **extra)``; a dict stays a dict. zoo's ``-params
    policy_kwargs:...`` replaces the whole entry instead."""
    if isinstance(value, dict):
        return {**value, **extra}
    if value is not None and not isinstance(value, str):
        raise TypeError(f"policy_kwargs must be a string or a dict, got {type(value).__name__}")
    return f"dict({value or 'dict()'}, **{extra!r})"


class _Experiment(ExperimentManager):
    """rl_zoo3's ExperimentManager; without a log folder it writes nothing (no run folder, config or Monitor files)."""

    def __init__(self, *args: Any, write_files: bool, **kwargs: Any):
        self.write_files = write_files
        if kwargs.get("vec_env_type") == "array":
            # rl_zoo3's own override of its VecEnv class (it knows only "dummy" and "subproc" by name).
            self.default_vec_env_cls = array_vec_env
            kwargs["vec_env_type"] = "dummy"
        super().__init__(*args, **kwargs)

    def create_log_folder(self) -> None:
        if self.write_files:
            super().create_log_folder()

    def _save_config(self, saved_hyperparams: dict[str, Any]) -> None:
        if self.write_files:
            super()._save_config(saved_hyperparams)

    def create_envs(self, n_envs: int, eval_env: bool = False, no_log: bool = False) -> VecEnv:
        return super().create_envs(n_envs, eval_env, no_log=no_log or not self.write_files)


def build_model(
    conf_file: str | os.PathLike,
    env_id: str,
    seed: int = 0,
    device: str = "cpu",
    verbose: int = 0,
    algo: str | None = None,
    log_folder: str | os.PathLike | None = None,
    tensorboard_log: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    vec_env_type: str = "dummy",
    **hyperparams: Any,
) -> tuple[BaseAlgorithm, list[BaseCallback]]:
    """Build the model and callbacks that ``rl_zoo3.train`` builds for an entry, through rl_zoo3's ExperimentManager.

    ``conf_file`` is a path or a method name (``"rnn_hn"``). ``build_model(conf, env, seed=s, learning_rate=3e-4)``
    is ``python -m sb3_hypernet.train --algo <algo> --env env --conf-file conf --seed s -params
    learning_rate:3e-4`` up to the call of ``learn``, ``algo`` being by default
    the algorithm the entry is written for (:func:`entry_algorithm`: ``meta_ppo_lstm`` for the papers' entries):
    keyword arguments replace entries of the YAML (values as in the file: ``"lin_1e-3"`` schedules,
    ``policy_kwargs`` as a string or a dict), and ``env_kwargs`` replaces the entry's ``env_kwargs`` as
    ``--env-kwargs`` does; ``vec_env_type`` is zoo's ``--vec-env`` (``"dummy"`` or ``"subproc"``), or ``"array"``:
    the family's array-stepped VecEnv (registered by the family, e.g. :mod:`envs.vector`), as ``python -m
    sb3_hypernet.train --vec-env array``. With ``log_folder`` the run folder (``<log_folder>/<algo>/<env>_<id>``,
    Monitor files, saved config) is written as rl_zoo3 writes it; without, nothing is written. rl_zoo3's own
    printing is shown only with ``verbose >= 1``.
    """
    conf_file = zoo_config(conf_file)
    algo = algo or entry_algorithm(load_hyperparams(conf_file, env_id))
    load_hyperparams(conf_file, env_id, algo)
    check_hyperparams(hyperparams, "build_model", algo)
    arguments = dict(algo=algo, env=env_id, conf_file=str(conf_file), seed=seed, hyperparams=hyperparams)
    experiment = _Experiment(
        argparse.Namespace(**arguments, log_folder=str(log_folder or ""), env_kwargs=env_kwargs),
        algo,
        env_id,
        str(log_folder or ""),
        tensorboard_log=tensorboard_log or "",
        eval_freq=-1,
        hyperparams=hyperparams or None,
        env_kwargs=env_kwargs,
        vec_env_type=vec_env_type,
        seed=seed,
        verbose=verbose,
        device=device,
        config=str(conf_file),
        write_files=log_folder is not None,
    )
    quiet = contextlib.redirect_stdout(io.StringIO()) if verbose < 1 else contextlib.nullcontext()
    with quiet:
        model, _ = experiment.setup_experiment()
    return model, experiment.callbacks


def use_array_vec_env(argv: list[str]) -> list[str]:
    """``argv`` with ``--vec-env array`` replaced by zoo's ``dummy``, after pointing rl_zoo3's own VecEnv override
    (``ExperimentManager.default_vec_env_cls``) at the array-stepped VecEnv; ``argv`` unchanged otherwise."""
    argv = list(argv)
    for i, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith("--vec-env=") else argv[i + 1] if arg == "--vec-env" else None
        if value == "array":
            ExperimentManager.default_vec_env_cls = staticmethod(array_vec_env)  # a function, not a method
            argv[i : i + (1 if "=" in arg else 2)] = ["--vec-env", "dummy"]
            break
    return argv


def enable_tf32() -> None:
    """Let CUDA run float32 matrix products, convolutions and cuDNN's GRU in TensorFloat-32 (Ampere and later: ~10
    bits of mantissa in the products, float32 accumulation). CPU computations are unaffected; PPO's losses and
    optimiser stay float32."""
    th.backends.cuda.matmul.fp32_precision = "tf32"
    th.backends.cudnn.conv.fp32_precision = "tf32"
    th.backends.cudnn.rnn.fp32_precision = "tf32"


def use_tf32(argv: list[str]) -> list[str]:
    """``argv`` without ``--tf32``, after :func:`enable_tf32` if it was there."""
    if "--tf32" not in argv:
        return list(argv)
    enable_tf32()
    return [arg for arg in argv if arg != "--tf32"]


#: Algorithms whose policy rl_zoo3's evaluate_policy cannot evaluate: PEARL needs a posterior from context gathered
#: on the task, MAML an inner adaptation step; their own protocols are in ``python -m sb3_hypernet.evaluate``.
META_EVALUATED_ALGORITHMS = ("pearl", "maml")


def use_meta_algorithm_evaluation(argv: list[str]) -> list[str]:
    """``argv`` with rl_zoo3's periodic evaluation off (``--eval-freq -1``) for :data:`META_EVALUATED_ALGORITHMS`.

    rl_zoo3's ``EvalCallback`` and ``-optimize``'s trials evaluate with SB3's ``evaluate_policy``: for PEARL that is the
    prior's z on every episode, for MAML the unadapted policy, and a ``best_model.zip`` chosen by it would be chosen by
    the wrong number. Asking for either with these algorithms exits with a usage error that says what to use instead.
    """
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--algo")
    parser.add_argument("--eval-freq", type=int)
    parser.add_argument("-optimize", "--optimize-hyperparameters", action="store_true")
    known, _ = parser.parse_known_args(list(argv))
    if known.algo not in META_EVALUATED_ALGORITHMS:
        return list(argv)
    evaluate = f"python -m sb3_hypernet.evaluate --model <saved zip> --env <env id> (its {known.algo} protocol)"
    if known.optimize_hyperparameters:
        raise SystemExit(
            f"{sys.argv[0]}: error: -optimize cannot tune --algo {known.algo}: rl_zoo3 scores its trials with SB3's "
            f"evaluate_policy, which does not run {known.algo}'s adaptation; train a grid of runs and compare them "
            f"with {evaluate}"
        )
    if known.eval_freq is not None and known.eval_freq > 0:
        raise SystemExit(
            f"{sys.argv[0]}: error: argument --eval-freq: rl_zoo3's EvalCallback cannot evaluate --algo "
            f"{known.algo} (SB3's evaluate_policy does not run its adaptation), so its periodic evaluation is off; "
            f"save checkpoints with --save-freq and evaluate them with {evaluate}"
        )
    return list(argv) if known.eval_freq is not None else [*argv, "--eval-freq", "-1"]


#: The package's benchmark environments, imported by the launchers unless ``--gym-packages`` names others.
DEFAULT_GYM_PACKAGES = ("envs",)


def use_default_gym_packages(argv: list[str]) -> list[str]:
    """``argv`` with ``--gym-packages envs`` added when it names no gym packages, so that the benchmarks' ids are
    registered before rl_zoo3 looks the env up (rl_zoo3 itself imports none by default)."""
    if any(arg == "--gym-packages" or arg.startswith("--gym-packages=") for arg in argv):
        return list(argv)
    return [*argv, "--gym-packages", *DEFAULT_GYM_PACKAGES]
