"""Command line: evaluate a saved RecurrentPPO ``.zip`` over meta-episodes.

    python -m sb3_hypernet.evaluate --model logs/ppo_lstm/GridNavi-v0_1/GridNavi-v0.zip --env GridNavi-v0
    python -m sb3_hypernet.evaluate -f logs --algo ppo_lstm --env GridNavi-v0    # latest rl_zoo3 run

Prints the mean return of each inner episode and of the meta-episode with 68% bootstrap confidence intervals
(and success rates where the benchmark reports success); ``--json`` prints the same as JSON.
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
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_hypernet.evaluation import (
    MetaEvaluation,
    check_model_fits_env,
    evaluate_meta_policy,
    find_vecnormalize,
    find_zoo_env_kwargs,
    load_meta_model,
    wrap_vecnormalize,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sb3_hypernet.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="path of the saved .zip (RecurrentPPO)")
    parser.add_argument("-f", "--log-folder", default=None, help="rl_zoo3 log folder (instead of --model)")
    parser.add_argument("--algo", default="ppo_lstm", help="rl_zoo3 algorithm name, with --log-folder")
    parser.add_argument("--exp-id", type=int, default=0, help="rl_zoo3 run id with --log-folder (0: latest)")
    parser.add_argument("--env", required=True, help="meta-episode environment id, e.g. GridNavi-v0")
    parser.add_argument("-n", "--n-meta-episodes", type=int, default=100, help="meta-episodes, each a new task")
    parser.add_argument("--seed", type=int, default=0, help="seed of task sampling")
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of deterministic ones")
    parser.add_argument("--n-envs", type=int, default=8, help="environments run in parallel")
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


def format_summary(summary: dict[str, Any]) -> str:
    """A table of means and confidence intervals."""
    pct = round(100 * summary["confidence"])
    lines = [f"{'':<22}{'mean':>10}   {pct}% CI"]

    def row(label: str, stats: dict[str, float]) -> str:
        return f"{label:<22}{stats['mean']:>10.3f}   [{stats['ci_low']:.3f}, {stats['ci_high']:.3f}]"

    for i, stats in enumerate(summary["inner_returns"], start=1):
        lines.append(row(f"episode {i} return", stats))
    lines.append(row("meta-episode return", summary["meta_return"]))
    for i, stats in enumerate(summary.get("inner_successes", []), start=1):
        lines.append(row(f"episode {i} success", stats))
    if "success_rate" in summary:
        lines.append(row("success rate", summary["success_rate"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> MetaEvaluation:
    args = parse_args(argv)
    for package in args.gym_packages:
        importlib.import_module(package)
    if args.env not in gym.registry:
        raise SystemExit(f"error: unknown environment id {args.env!r} (imported {', '.join(args.gym_packages)})")
    try:
        if args.model is None:
            args.model = find_zoo_model(args.log_folder, args.algo, args.env, args.exp_id)
        model = load_meta_model(args.model, device=args.device)
        n_envs = min(args.n_envs, args.n_meta_episodes)
        # As rl_zoo3.enjoy: the env keyword arguments the run trained with, then those given here.
        env_kwargs = {**find_zoo_env_kwargs(args.model), **args.env_kwargs}
        env = BaseAlgorithm._wrap_env(
            DummyVecEnv([lambda: gym.make(args.env, **env_kwargs) for _ in range(n_envs)]), monitor_wrapper=False
        )
        check_model_fits_env(model, env, args.env)
        stats_path = args.vecnormalize or find_vecnormalize(args.model)
        if stats_path is not None:
            env = wrap_vecnormalize(env, stats_path)
        result = evaluate_meta_policy(
            model, env, args.n_meta_episodes, deterministic=not args.stochastic, seed=args.seed
        )
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"error: {error}") from None
    summary = result.summary()
    if args.json:
        print(json.dumps({"env": args.env, "model": args.model, "deterministic": not args.stochastic, **summary}))
    else:
        mode = "stochastic" if args.stochastic else "deterministic"
        print(f"{args.env}: {args.model}, {summary['n_meta_episodes']} meta-episodes, {mode}, seed {args.seed}")
        print(format_summary(summary))
    sys.stdout.flush()
    return result


if __name__ == "__main__":
    main()
