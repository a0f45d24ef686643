"""Learning curve of one method on one meta-episode env: train for a frame budget, evaluate at checkpoints.

    python benchmarks/learning/learning_curve.py --method rnn_hn --env GridNavi-v0 --frames 1e6 \\
        --checkpoints 2.5e5 5e5 1e6
    python benchmarks/learning/learning_curve.py --method rnn_hn --env CheetahDir-v0 --frames 5e5 --n-eval 16

Hyperparameters come from zoo_configs/<method>.yml (the entry for --env), built by rl_zoo3 itself
(sb3_hypernet.zoo.build_model), exactly as `python -m rl_zoo3.train` would use them. Training is one `learn` call over
the whole budget, so `lin_` schedules decay over --frames as in rl_zoo3; a --resume continues the same schedule.
At each checkpoint (the first rollout boundary at or after it) it prints the mean deterministic meta-episode
return over --n-eval sampled tasks with its 68% bootstrap CI over those tasks (one seed), the mean return of each
inner episode, and the training frames/s so far (evaluation and saving excluded), then the numbers the benchmark
reports per inner episode (MC-LS: rooms passed, check accuracy, end reached, end-choice accuracy). The benchmark's
known reference is printed at the start where it has one (GridNavi: Bayes-optimal 37.2; MC-LS: optimal 27.4 on LS).

    python benchmarks/learning/learning_curve.py --method rnn_hn --env MCLS-v0 --frames 1e6 \\
        --checkpoints 2e5 4e5 6e5 8e5 1e6
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch as th
from rl_zoo3.utils import StoreDict
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecNormalize

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `python benchmarks/<kind>/<x>.py`
import envs  # noqa: F401  (registers the benchmark ids)
from benchmarks.common import ZOO_CONFIGS, add_threads_option, append_record, new_parser, set_threads
from sb3_hypernet import RandomPolicy, evaluate_meta_policy
from sb3_hypernet.common.callbacks import CheckpointEvaluation
from sb3_hypernet.experiments.zoo import build_model, entry_algorithm, load_hyperparams


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = new_parser(__doc__)
    parser.add_argument("--method", default="rnn_hn", help="zoo config name: rnn, rnn_s, rnn_hn")
    parser.add_argument("--conf-file", default=None, help="zoo config path (default: zoo_configs/<method>.yml)")
    parser.add_argument(
        "--algo",
        default=None,
        help="rl_zoo3 algorithm, meta_ppo_lstm or ppo_lstm (default: the one the entry is written for)",
    )
    parser.add_argument(
        "--hyperparams", type=str, nargs="+", action=StoreDict, default={}, help="key:value overrides, as zoo's -params"
    )
    parser.add_argument("--env", default="GridNavi-v0")
    parser.add_argument("--frames", type=float, default=1e6, help="training frames (environment steps) in all")
    parser.add_argument("--checkpoints", type=float, nargs="*", default=None, help="frame counts to evaluate at")
    parser.add_argument("--learning-rate", type=float, default=None, help="override the config's learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-eval", type=int, default=100, help="meta-episodes per evaluation")
    parser.add_argument("--eval-seed", type=int, default=10_000, help="seed of the evaluation tasks")
    parser.add_argument(
        "--eval-splits",
        nargs="*",
        default=[],
        help="also evaluate on these task splits (env keyword split=...; train test on Meta-World), with success rates",
    )
    add_threads_option(parser)
    parser.add_argument(
        "--vec-env",
        choices=["dummy", "subproc", "array"],
        default="dummy",
        help="rl_zoo3's --vec-env, or array-stepped",
    )
    parser.add_argument("--out", default=None, help="append one JSON line per checkpoint to this file")
    parser.add_argument("--save-dir", default=None, help="save the model (and VecNormalize) at every checkpoint")
    parser.add_argument("--resume", default=None, help="continue from a model saved by --save-dir (<frames>.zip)")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    set_threads(args.threads)
    config = args.conf_file or ZOO_CONFIGS / f"{args.method}.yml"
    args.algo = args.algo or entry_algorithm(load_hyperparams(config, args.env))  # recorded with the results
    overrides = {**args.hyperparams, **({} if args.learning_rate is None else {"learning_rate": args.learning_rate})}
    model, callbacks = build_model(
        config, args.env, seed=args.seed, algo=args.algo, vec_env_type=args.vec_env, **overrides
    )
    # Evaluate on the env the entry trains on (e.g. with the task entry the task-inference methods need).
    env_kwargs = overrides.get("env_kwargs", load_hyperparams(config, args.env, args.algo).get("env_kwargs", {}))
    if args.resume:
        env = VecNormalize.load(args.resume.replace(".zip", "_vecnormalize.pkl"), model.get_vec_normalize_env().venv)
        model = type(model).load(args.resume, env=env, device="cpu")
    total = int(args.frames)
    lr = model.lr_schedule(1.0)
    print(
        f"{args.method} ({args.algo}{', ' + str(args.hyperparams) if args.hyperparams else ''}) on {args.env}, "
        f"lr {lr:g}, seed {args.seed}, {total} frames, torch threads {th.get_num_threads()}, "
        f"eval {args.n_eval} meta-episodes (deterministic, task seed {args.eval_seed})"
    )
    random_policy = RandomPolicy.for_env(args.env, **env_kwargs)
    random_summary = evaluate_meta_policy(
        random_policy, args.env, args.n_eval, seed=args.eval_seed, env_kwargs=env_kwargs
    ).summary()
    print(f"random policy: meta-episode return {random_summary['meta_return']['mean']:.2f}")
    if "reference" in random_summary:
        reference = random_summary["reference"]
        per_episode = ", ".join(f"{value:.2f}" for value in reference["inner_returns"])
        print(f"{reference['label']}: meta-episode return {reference['meta_return']:.2f} (per episode {per_episode})")
    print(f"{'frames':>9} {'meta return':>12} {'68% CI':>17}  per-inner-episode returns   {'fps':>6}")

    def report(model: BaseAlgorithm, summary: dict[str, Any], fps: float) -> None:
        """Print (and save, and append to --out) one checkpoint's evaluation."""
        meta = summary["meta_return"]
        inner = " ".join(f"{s['mean']:6.2f}" for s in summary["inner_returns"])
        print(
            f"{model.num_timesteps:>9} {meta['mean']:>12.2f} [{meta['ci_low']:6.2f}, {meta['ci_high']:6.2f}]  {inner}"
            f"   {fps:>6.0f}",
            flush=True,
        )
        for key, per_episode in summary.get("inner_statistics", {}).items():
            values = " ".join(f"{s['mean']:6.2f}" for s in per_episode)
            print(f"{'':>9} {key.replace('_', ' ')} per inner episode: {values}", flush=True)
        splits = {}
        for split in args.eval_splits:
            kwargs = {**env_kwargs, "split": split}
            splits[split] = evaluate_meta_policy(model, args.env, args.n_eval, seed=args.eval_seed,
                                                 env_kwargs=kwargs).summary()  # fmt: skip
            rates = splits[split].get("inner_successes")
            success = " ".join(f"{s['mean']:.2f}" for s in rates) if rates else "n/a"
            print(f"{'':>9} {split} split: success per inner episode {success}", flush=True)
        if args.save_dir:
            Path(args.save_dir).mkdir(parents=True, exist_ok=True)
            model.save(Path(args.save_dir) / f"{model.num_timesteps}.zip")
            vec_normalize = model.get_vec_normalize_env()
            vec_normalize.save(str(Path(args.save_dir) / f"{model.num_timesteps}_vecnormalize.pkl"))
        if args.out:
            finite = all(bool(th.isfinite(p).all()) for p in model.policy.parameters())
            record = dict(vars(args), frames=model.num_timesteps, fps=fps, learning_rate=lr, **summary)
            record["cpu_seconds"] = time.process_time()  # this process's CPU time so far, evaluations included
            if splits:
                record["splits"] = splits
            record["diverged"] = not finite
            append_record(args.out, record)

    checkpoints = [int(c) for c in (args.checkpoints or [total]) if model.num_timesteps < int(c) <= total]
    evaluation = CheckpointEvaluation(args.env, checkpoints, report, args.n_eval, args.eval_seed, env_kwargs)
    try:
        model.learn(total - model.num_timesteps, callback=[*callbacks, evaluation], reset_num_timesteps=False)
    except ValueError as error:  # NaN parameters surface as invalid distribution parameters
        finite = all(th.isfinite(p).all() for p in model.policy.parameters())
        if finite:
            raise  # not a divergence: a real error
        print(f"training failed at {model.num_timesteps} frames (finite parameters: {finite}): {error}")
        if args.out:
            append_record(args.out, dict(vars(args), frames=model.num_timesteps, diverged=True))
        raise SystemExit(1) from error


if __name__ == "__main__":
    main()
