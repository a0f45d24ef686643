"""Command line: evaluate a saved RecurrentPPO, MetaRecurrentPPO, PEARL or MAML ``.zip``.

    python -m sb3_hypernet.evaluate --model logs/ppo_lstm/GridNavi-v0_1/GridNavi-v0.zip --env GridNavi-v0
    python -m sb3_hypernet.evaluate -f logs --algo ppo_lstm --env GridNavi-v0    # latest rl_zoo3 run
    python -m sb3_hypernet.evaluate -f logs --env ML10-v0 --protocol adaptation --splits train test
    python -m sb3_hypernet.evaluate --model pearl.zip --env CheetahVelTask-v0 --exploration-episodes 2
    python -m sb3_hypernet.evaluate --model maml.zip --env Navigation2DTask-v0 --inner-steps 3

Prints the mean return of each inner episode and of the meta-episode with 68% bootstrap confidence intervals
(and success rates where the benchmark reports success); ``--json`` prints the same as JSON. ``--protocol
adaptation`` runs Meta-World's protocol instead (:mod:`sb3_hypernet.common.adaptation`): per task of each split,
``--adaptation-episodes`` then ``--evaluation-episodes`` inner episodes with the hidden state kept, and the success
rate of the evaluation episodes, per split.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Any

import gymnasium as gym
from rl_zoo3.utils import StoreDict, get_latest_run_id
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_hypernet.common.adaptation import evaluate_adaptation
from sb3_hypernet.common.array_vec_env import make_array_vec_env
from sb3_hypernet.common.evaluation import (
    MetaEvaluation,
    check_model_fits_env,
    evaluate_meta_policy,
    find_vecnormalize,
    find_zoo_env_kwargs,
    format_summary,
    rounded,
    wrap_vecnormalize,
)
from sb3_hypernet.common.meta_episode import make_meta_env
from sb3_hypernet.experiments.arguments import at_least, seed
from sb3_hypernet.maml import MAML, evaluate_maml
from sb3_hypernet.meta_ppo.loading import check_model_file, load_meta_model
from sb3_hypernet.pearl import PEARL, evaluate_pearl


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="path of the saved .zip (RecurrentPPO)")
    parser.add_argument("-f", "--log-folder", default=None, help="rl_zoo3 log folder (instead of --model)")
    parser.add_argument("--algo", default="ppo_lstm", help="rl_zoo3 algorithm name, with --log-folder")
    parser.add_argument("--exp-id", type=at_least(0), default=0, help="rl_zoo3 run id with --log-folder (0: latest)")
    parser.add_argument("--env", required=True, help="meta-episode environment id, e.g. GridNavi-v0")
    parser.add_argument("-n", "--n-meta-episodes", type=at_least(1), default=100, help="meta-episodes, each a new task")
    parser.add_argument("--seed", type=seed, default=0, help="seed of task sampling")
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of deterministic ones")
    parser.add_argument(
        "--n-envs",
        type=at_least(1),
        default=None,
        help="environments run in parallel (8; MAML: episodes per stage, 20)",
    )
    parser.add_argument(
        "--vec-env",
        choices=["dummy", "array"],
        default="dummy",
        help="DummyVecEnv, or the task family's array-stepped VecEnv (the same meta-episodes, stepped in one call)",
    )
    parser.add_argument(
        "--env-kwargs",
        type=str,
        nargs="+",
        action=StoreDict,
        default={},
        help="key:value for gym.make, on top of those the rl_zoo3 run trained with",
    )
    parser.add_argument("--gym-packages", type=str, nargs="+", default=["envs"], help="modules that register envs")
    parser.add_argument("--vecnormalize", default=None, help="VecNormalize statistics (default: rl_zoo3's, if any)")
    parser.add_argument("--device", default="cpu", help="torch device")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--protocol",
        choices=["meta-episodes", "adaptation"],
        default="meta-episodes",
        help="meta-episodes on sampled tasks (default), or Meta-World's adaptation protocol on every task of a split",
    )
    parser.add_argument("--splits", nargs="+", default=["train", "test"], help="task splits (adaptation protocol)")
    parser.add_argument(
        "--adaptation-episodes", type=at_least(0), default=10, help="episodes per task before evaluation"
    )
    parser.add_argument("--evaluation-episodes", type=at_least(1), default=3, help="evaluated episodes per task")
    parser.add_argument(
        "--tasks-per-class", type=at_least(1), default=None, help="the first N tasks of each class (all)"
    )
    parser.add_argument("--episodes", type=at_least(1), default=3, help="PEARL models: episodes per task (3)")
    parser.add_argument("--inner-steps", type=at_least(0), default=1, help="MAML models: inner steps evaluated (1)")
    parser.add_argument(
        "--exploration-episodes",
        type=at_least(0),
        default=1,
        help="PEARL models: episodes with z from the prior before the posterior (1; the reference's Cheetah-Vel: 2)",
    )
    args = parser.parse_args(argv)
    if (args.model is None) == (args.log_folder is None):
        parser.error("give either --model or --log-folder")
    return args


def find_zoo_model(log_folder: str, algo: str, env_id: str, exp_id: int = 0) -> str:
    """The final model of an rl_zoo3 run: ``<log_folder>/<algo>/<env>_<id>/<env>.zip`` (id 0: the latest run)."""
    log_path = os.path.join(log_folder, algo)
    if exp_id == 0:
        exp_id = get_latest_run_id(log_path, env_id)
    path = os.path.join(log_path, f"{env_id}_{exp_id}", f"{env_id}.zip")
    if not os.path.exists(path):
        raise FileNotFoundError(f"no model file at {path} (no finished rl_zoo3 run of {algo} on {env_id} there)")
    return path


def load_model(path: str, device: str = "cpu") -> BaseAlgorithm:
    """A saved model as the algorithm that saved it: PEARL, MetaRecurrentPPO or RecurrentPPO."""
    if not os.path.exists(path) and os.path.exists(f"{path}.zip"):
        path = f"{path}.zip"
    if not os.path.exists(path):
        raise FileNotFoundError(f"no model file at {path}")
    check_model_file(path)
    data, _, _ = load_from_zip_file(path, device="cpu", load_data=True)
    algorithm = (data or {}).get("algorithm_class")
    if algorithm in ("PEARL", "MAML"):
        return {"PEARL": PEARL, "MAML": MAML}[algorithm].load(path, device=device)
    return load_meta_model(path, device=device)


def evaluate_pearl_model(model: PEARL, args: argparse.Namespace) -> MetaEvaluation:
    """PEARL's protocol on the model's test tasks (the first ``-n``), printed as the other evaluations."""
    spec = gym.spec(args.env)
    if "task_env_id" in spec.kwargs:
        raise ValueError(
            f"{args.env} is a meta-episode env; a PEARL model runs on its task env {spec.kwargs['task_env_id']}"
        )
    env = DummyVecEnv([lambda: gym.make(args.env, **args.env_kwargs)])
    check_model_fits_env(model, env, args.env)
    tasks = (model.test_tasks or model.train_tasks)[: args.n_meta_episodes]
    result = evaluate_pearl(model, env, tasks, n_episodes=args.episodes, exploration_episodes=args.exploration_episodes,
                            deterministic=not args.stochastic, seed=args.seed)  # fmt: skip
    summary = result.summary()
    split = "test" if model.test_tasks else "train"
    if args.json:
        header = {"env": args.env, "model": args.model, **model_facts(model), "seed": args.seed, "protocol": "pearl"}
        print(json.dumps(rounded({**header, "tasks": split, "deterministic": not args.stochastic, **summary})))
    else:
        print(f"{args.env}: {args.model}, {len(tasks)} {split} tasks, PEARL's protocol ({args.episodes} episodes per "
              f"task, z from the posterior after episode {args.exploration_episodes}), seed {args.seed}")  # fmt: skip
        print(describe_training(model))
        print(format_summary(summary))
    sys.stdout.flush()
    return result


def evaluate_maml_model(model: MAML, args: argparse.Namespace) -> MetaEvaluation:
    """MAML's evaluation on the model's test tasks (the first ``-n``): returns before and after each inner step."""
    spec = gym.spec(args.env)
    if "task_env_id" in spec.kwargs:
        raise ValueError(
            f"{args.env} is a meta-episode env; a MAML model runs on its task env {spec.kwargs['task_env_id']}"
        )
    n_envs = args.n_envs or 20
    env = DummyVecEnv([lambda: gym.make(args.env, **args.env_kwargs) for _ in range(n_envs)])
    check_model_fits_env(model, env, args.env)
    tasks = (model.test_tasks or model.train_tasks)[: args.n_meta_episodes]
    result = evaluate_maml(model, env, tasks, n_inner_steps=args.inner_steps, seed=args.seed)
    summary = result.summary()
    split = "test" if model.test_tasks else "train"
    if args.json:
        header = {"env": args.env, "model": args.model, **model_facts(model), "seed": args.seed, "protocol": "maml"}
        print(json.dumps(rounded({**header, "tasks": split, "deterministic": False, **summary})))
    else:
        print(f"{args.env}: {args.model}, {len(tasks)} {split} tasks, MAML's evaluation ({n_envs} episodes of "
              f"sampled actions per task, before and after each of {args.inner_steps} inner step(s)), "
              f"seed {args.seed}")  # fmt: skip
        print(describe_training(model))
        print(format_summary(summary))
    sys.stdout.flush()
    return result


def model_facts(model: BaseAlgorithm) -> dict[str, Any]:
    """What a result depends on beyond the command line: frames trained, and the pre-training phase if unfinished."""
    facts: dict[str, Any] = {"frames": int(model.num_timesteps)}
    if getattr(model, "pretrain_updates", 0) and model.pretrain_updates_done < model.pretrain_updates:
        facts["pretraining"] = {"updates_done": model.pretrain_updates_done, "updates": model.pretrain_updates}
    return facts


def describe_training(model: BaseAlgorithm) -> str:
    """The header line on how far the model trained (the frames SB3 actually trained, whole rollouts)."""
    facts = model_facts(model)
    line = f"{type(model).__name__} with {type(model.policy).__name__}, trained {facts['frames']} frames"
    if "pretraining" in facts:
        done, total = facts["pretraining"]["updates_done"], facts["pretraining"]["updates"]
        line += (
            f"; still in multi-task pre-training ({done} of {total} updates): these are the returns of the "
            "multi-task policy, not of the meta-trained one"
        )
    return line


def evaluate_splits(model: BaseAlgorithm, args: argparse.Namespace, env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Meta-World's protocol on each split of ``args.env``'s task env: a summary per split."""
    task_env_id = gym.spec(args.env).kwargs["task_env_id"]  # a meta-episode id: the model was checked to fit it
    results = {}
    for split in args.splits:
        kwargs = {**env_kwargs, "split": split}
        task_env = make_meta_env(task_env_id, n_episodes=1, **kwargs).unwrapped
        if not hasattr(task_env, "tasks"):
            raise ValueError(f"{task_env_id} lists no tasks per split; the adaptation protocol needs them")
        tasks = list(range(len(task_env.tasks)))
        if args.tasks_per_class is not None:
            seen: dict[str, int] = {}
            kept = []
            for i in tasks:
                name = getattr(task_env.tasks[i], "env_name", "")
                if seen.get(name, 0) < args.tasks_per_class:
                    kept.append(i)
                    seen[name] = seen.get(name, 0) + 1
            tasks = kept
        result = evaluate_adaptation(
            model, task_env_id, tasks, args.adaptation_episodes, args.evaluation_episodes, n_envs=args.n_envs or 8,
            deterministic=not args.stochastic, seed=args.seed, env_kwargs=kwargs,
        )  # fmt: skip
        results[split] = result.summary()
    return results


def format_splits(results: dict[str, Any], adaptation_episodes: int) -> str:
    """Success rate per split and class, and success and return per inner episode."""
    lines = []
    for split, summary in results.items():
        lines.append(f"{split} split, {summary['n_tasks']} tasks: success rate {summary['success_rate']:.3f}")
        for name, rate in summary["class_success_rates"].items():
            lines.append(f"  {name:<28}{rate:>8.3f}")
        episodes = zip(summary["inner_successes"], summary["inner_returns"], strict=True)
        for i, (success, ret) in enumerate(episodes, start=1):
            kind = "adaptation" if i <= adaptation_episodes else "evaluation"
            lines.append(
                f"  episode {i:>2} ({kind}): success {success['mean']:.3f} [{success['ci_low']:.3f}, "
                f"{success['ci_high']:.3f}], return {ret['mean']:.1f} [{ret['ci_low']:.1f}, {ret['ci_high']:.1f}]"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> MetaEvaluation | dict[str, Any]:
    args = parse_args(argv)
    for package in args.gym_packages:
        importlib.import_module(package)
    if args.env not in gym.registry:
        raise SystemExit(f"error: unknown environment id {args.env!r} (imported {', '.join(args.gym_packages)})")
    try:
        if args.model is None:
            args.model = find_zoo_model(args.log_folder, args.algo, args.env, args.exp_id)
        model = load_model(args.model, device=args.device)
        if isinstance(model, PEARL):
            return evaluate_pearl_model(model, args)
        if isinstance(model, MAML):
            return evaluate_maml_model(model, args)
        n_envs = min(args.n_envs or 8, args.n_meta_episodes)
        # As rl_zoo3.enjoy: the env keyword arguments the run trained with, then those given here.
        env_kwargs = {**find_zoo_env_kwargs(args.model), **args.env_kwargs}
        if args.vec_env == "array":
            vec_env = make_array_vec_env(args.env, n_envs, env_kwargs=env_kwargs)
        else:
            vec_env = DummyVecEnv([lambda: gym.make(args.env, **env_kwargs) for _ in range(n_envs)])
        env = BaseAlgorithm._wrap_env(vec_env, monitor_wrapper=False)
        check_model_fits_env(model, env, args.env)
        stats_path = args.vecnormalize or find_vecnormalize(args.model)
        if args.protocol == "adaptation":
            if stats_path is not None and wrap_vecnormalize(env, stats_path).norm_obs:
                raise ValueError(
                    "the adaptation protocol runs on raw observations; this model's VecNormalize has norm_obs"
                )
            results = evaluate_splits(model, args, env_kwargs)
            if args.json:
                header = {"env": args.env, "model": args.model, **model_facts(model), "seed": args.seed}
                print(json.dumps(rounded({**header, "protocol": "adaptation", "splits": results})))
            else:
                print(f"{args.env}: {args.model}, Meta-World's protocol ({args.adaptation_episodes} adaptation + "
                      f"{args.evaluation_episodes} evaluation episodes per task), seed {args.seed}")  # fmt: skip
                print(describe_training(model))
                print(format_splits(results, args.adaptation_episodes))
            sys.stdout.flush()
            return results
        if stats_path is not None:
            env = wrap_vecnormalize(env, stats_path)
        result = evaluate_meta_policy(
            model, env, args.n_meta_episodes, deterministic=not args.stochastic, seed=args.seed
        )
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"error: {error}") from None
    summary = result.summary()
    if args.json:
        header = {"env": args.env, "model": args.model, **model_facts(model), "seed": args.seed}
        print(json.dumps(rounded({**header, "deterministic": not args.stochastic, **summary})))
    else:
        mode = "stochastic" if args.stochastic else "deterministic"
        print(f"{args.env}: {args.model}, {summary['n_meta_episodes']} meta-episodes, {mode}, seed {args.seed}")
        print(describe_training(model))
        print(format_summary(summary))
    sys.stdout.flush()
    return result


if __name__ == "__main__":
    main()
