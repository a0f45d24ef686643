"""Learning check on the Grid-Worlds: train one method for a frame budget, evaluate at checkpoints.

    python benchmarks/gridworld_learning.py --method rnn_hn --frames 1e6 --checkpoints 2.5e5 5e5 1e6

Any meta-episode env with an entry in the method's zoo config works the same way, e.g. the Cheetah-Dir check:
``--env CheetahDir-v0 --frames 5e5 --n-eval 16``.
Hyperparameters come from zoo_configs/<method>.yml (the entry for --env), exactly as rl_zoo3 would use them.
At each checkpoint it prints the mean deterministic meta-episode return over --n-eval sampled tasks with its 68%
bootstrap CI and the per-inner-episode breakdown (GridNavi: Bayes-optimal about 37.2, known-goal optimum 44.3).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch as th
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.vec_env import VecNormalize

import envs  # noqa: F401  (registers the benchmark ids)
from sb3_hypernet.evaluation import RandomPolicy, evaluate_meta_policy
from sb3_hypernet.zoo import build_model, load_hyperparams

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--method", default="rnn_hn", help="zoo config name: rnn, rnn_s, rnn_hn")
parser.add_argument("--conf-file", default=None, help="zoo config path (default: zoo_configs/<method>.yml)")
parser.add_argument("--env", default="GridNavi-v0")
parser.add_argument("--frames", type=float, default=1e6, help="training frames (environment steps)")
parser.add_argument("--checkpoints", type=float, nargs="*", default=None, help="frame counts to evaluate at")
parser.add_argument("--learning-rate", type=float, default=None, help="override the config's learning rate")
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--n-eval", type=int, default=100, help="meta-episodes per evaluation")
parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
parser.add_argument("--out", default=None, help="append one JSON line per checkpoint to this file")
parser.add_argument("--save-dir", default=None, help="save the model (and VecNormalize) at every checkpoint")
parser.add_argument("--resume", default=None, help="continue from a model saved by --save-dir (<frames>.zip)")
args = parser.parse_args()

if args.threads:
    th.set_num_threads(args.threads)
config = args.conf_file or Path(__file__).resolve().parents[1] / "zoo_configs" / f"{args.method}.yml"
hyperparams = load_hyperparams(config, args.env)
overrides = {} if args.learning_rate is None else {"learning_rate": args.learning_rate}
model, callbacks = build_model(hyperparams, args.env, seed=args.seed, **overrides)
if args.resume:
    env = VecNormalize.load(args.resume.replace(".zip", "_vecnormalize.pkl"), model.get_vec_normalize_env().venv)
    model = RecurrentPPO.load(args.resume, env=env, device="cpu")
checkpoints = sorted(int(c) for c in (args.checkpoints or [args.frames]))
lr = overrides.get("learning_rate", hyperparams.get("learning_rate"))
print(
    f"{args.method} on {args.env}, lr {lr}, seed {args.seed}, {int(args.frames)} frames, "
    f"torch threads {th.get_num_threads()}, eval {args.n_eval} meta-episodes (deterministic)"
)
random_summary = evaluate_meta_policy(RandomPolicy.for_env(args.env), args.env, args.n_eval, seed=10_000).summary()
print(f"random policy: meta-episode return {random_summary['meta_return']['mean']:.2f}")
print(f"{'frames':>9} {'meta return':>12} {'68% CI':>17}  per-inner-episode returns   {'fps':>6}")
start, start_frames = time.perf_counter(), model.num_timesteps
for checkpoint in (c for c in checkpoints if c > model.num_timesteps):
    try:
        model.learn(checkpoint - model.num_timesteps, callback=callbacks, reset_num_timesteps=False)
    except ValueError as error:  # NaN parameters surface as invalid distribution parameters
        finite = all(th.isfinite(p).all() for p in model.policy.parameters())
        print(f"training failed at {model.num_timesteps} frames (finite parameters: {finite}): {error}")
        if args.out:
            with open(args.out, "a") as file:
                file.write(json.dumps(dict(vars(args), frames=model.num_timesteps, diverged=True)) + "\n")
        raise SystemExit(1) from error
    elapsed = time.perf_counter() - start
    summary = evaluate_meta_policy(model, args.env, args.n_eval, seed=10_000).summary()
    meta = summary["meta_return"]
    inner = " ".join(f"{s['mean']:6.2f}" for s in summary["inner_returns"])
    print(
        f"{model.num_timesteps:>9} {meta['mean']:>12.2f} [{meta['ci_low']:6.2f}, {meta['ci_high']:6.2f}]  {inner}"
        f"   {(model.num_timesteps - start_frames) / elapsed:>6.0f}",
        flush=True,
    )
    if args.save_dir:
        Path(args.save_dir).mkdir(parents=True, exist_ok=True)
        model.save(Path(args.save_dir) / f"{model.num_timesteps}.zip")
        model.get_vec_normalize_env().save(str(Path(args.save_dir) / f"{model.num_timesteps}_vecnormalize.pkl"))
    if args.out:
        finite = all(bool(th.isfinite(p).all()) for p in model.policy.parameters())
        record = dict(vars(args), frames=model.num_timesteps, seconds=elapsed, learning_rate=lr, **summary)
        record["diverged"] = not finite
        with open(args.out, "a") as file:
            file.write(json.dumps(record) + "\n")
