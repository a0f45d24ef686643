"""MAML, Context-MAML and Hyper-MAML (ICML 2021, section 4): iterations per second, learning curves with returns before
and after adaptation, and their table.

    python benchmarks/learning/maml.py speed --threads 1
    python benchmarks/learning/maml.py learning --env Navigation2DTask-v0 --configs maml context_maml hyper_maml \\
        --seeds 0 --checkpoints 1e6 2e6 4e6 --out benchmarks/results/maml_navigation.jsonl --save-root /tmp/maml
    python benchmarks/learning/maml.py table --out benchmarks/results/maml_navigation.jsonl
    python benchmarks/learning/maml.py policy-std --save-root /tmp/maml

``speed``: meta-iterations per second (sampling a meta-batch before and after adaptation, then the TRPO step) of
each config at its zoo entry's sizes on Navigation2DTask-v0, with --meta-batch-size tasks; interleaved repeats,
medians.

``learning``: each zoo config on --env for each seed, built as ``python -m sb3_hypernet.train --algo maml`` builds
it (--hyperparams overrides entries as ``key:value``); at each checkpoint (the first iteration boundary past it),
``evaluate_maml`` on the test tasks (--inner-steps steps), one JSON line with the mean return of each stage. With
--save-root a run saves its model at every checkpoint and a restarted command resumes from the last one.

``table``: the records as a Markdown table: per config and checkpoint, the mean over seeds of each stage's return.

``policy-std``: the meta-learned action standard deviation (exp of the policy's log-std, per action dimension) of
every checkpoint a ``learning`` run saved under --save-root, as a Markdown table. The inner step's size on the mean
scales with 1 / std^2, so a shrinking std is a larger effective step on the same episodes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `python benchmarks/<kind>/<x>.py`
from benchmarks.common import (
    add_threads_option,
    new_parser,
    read_records,
    run_to_checkpoints,
    runs_by_checkpoint,
    set_threads,
)

CONFIGS = ("maml", "context_maml", "hyper_maml")


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = new_parser(__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    speed = commands.add_parser("speed", help="meta-iterations per second")
    speed.add_argument("--env", default="Navigation2DTask-v0")
    speed.add_argument("--meta-batch-size", type=int, default=20)
    speed.add_argument("--repeats", type=int, default=3)
    speed.add_argument("--device", default="cpu", help="torch device of the networks (cpu, cuda)")
    add_threads_option(speed, 1)
    learning = commands.add_parser("learning", help="learning curves before and after adaptation")
    learning.add_argument("--env", required=True, help="a task env id, e.g. Navigation2DTask-v0")
    learning.add_argument("--configs", nargs="+", default=list(CONFIGS), help="zoo config names")
    learning.add_argument("--seeds", type=int, nargs="+", default=[0])
    learning.add_argument("--checkpoints", type=float, nargs="+", required=True, help="environment steps")
    learning.add_argument("--hyperparams", nargs="*", default=[], help="entry overrides as key:value (zoo's -params)")
    learning.add_argument("--inner-steps", type=int, default=1)
    learning.add_argument("--out", required=True, help="JSON-lines file the records are appended to")
    learning.add_argument("--save-root", default=None, help="folder for checkpoints (resumable runs)")
    add_threads_option(learning, 1)
    table = commands.add_parser("table", help="the learning records as a Markdown table")
    table.add_argument("--out", required=True)
    policy_std = commands.add_parser("policy-std", help="the action std of every saved checkpoint")
    policy_std.add_argument("--save-root", required=True, help="a learning run's --save-root")
    return parser


def speed(args: argparse.Namespace) -> None:
    import torch

    import envs  # noqa: F401
    from sb3_hypernet.experiments.zoo import build_model

    models = {name: build_model(name, args.env, algo="maml", seed=0, device=args.device,
                                 meta_batch_size=args.meta_batch_size)[0]
              for name in CONFIGS}  # fmt: skip
    timings: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.repeats):
        for name, model in models.items():  # interleaved
            began = time.perf_counter()
            model.learn(1, reset_num_timesteps=False)
            timings[name].append(1.0 / (time.perf_counter() - began))
    episodes = models["maml"].env.num_envs
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), device {args.device}; {args.env}, "
          f"meta-batch {args.meta_batch_size} x {episodes} episodes; medians of {args.repeats} repeats")  # fmt: skip
    print("| config | iterations/s | seconds per iteration |\n|---|---|---|")
    for name, values in timings.items():
        rate = statistics.median(values)
        print(f"| {name} | {rate:.3f} | {1 / rate:.1f} |")


def learning(args: argparse.Namespace) -> None:
    import envs  # noqa: F401
    from sb3_hypernet.maml import MAML, evaluate_maml

    def evaluate(model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        summary = evaluate_maml(model, n_inner_steps=args.inner_steps, seed=10_000).summary()
        return summary, {"stages": summary["inner_labels"]}

    def load(path: Path) -> Any:
        from stable_baselines3.common.env_util import make_vec_env

        model = MAML.load(path, device="cpu")
        model.set_env(make_vec_env(args.env, n_envs=model.n_envs, seed=model.seed))
        return model

    run_to_checkpoints(args, "maml", evaluate, load, lambda model, path: model.save(path))


def table(args: argparse.Namespace) -> None:
    records = read_records(args.out)
    if not records:
        print(f"no records in {args.out}")
        return
    stages = records[0]["stages"]
    print(f"| env | config | steps | seeds | {' | '.join(stages)} |")
    print("|---|---|---|---|" + "---|" * len(stages))
    for (env_id, config, checkpoint), runs in runs_by_checkpoint(records):
        means = " | ".join(f"{statistics.mean(r['returns'][i] for r in runs):.2f}" for i in range(len(stages)))
        print(f"| {env_id} | {config} | {checkpoint} | {len(runs)} | {means} |")


def policy_std(args: argparse.Namespace) -> None:
    from sb3_hypernet.maml import MAML

    checkpoints = sorted(
        Path(args.save_root).glob("*/*/seed*/*.zip"),
        key=lambda p: (p.parts[-4], p.parts[-3], int(p.parts[-2][4:]), int(p.stem)),
    )
    if not checkpoints:
        print(f"no checkpoints under {args.save_root} (<config>/<env>/seed<N>/<steps>.zip)")
        return
    print("| env | config | seed | steps | action std |\n|---|---|---|---|---|")
    for path in checkpoints:
        model = MAML.load(path, device="cpu")
        std = model.policy.log_std.detach().exp().tolist()
        print(f"| {path.parts[-3]} | {path.parts[-4]} | {path.parts[-2][4:]} | {model.num_timesteps} | "
              f"{', '.join(f'{value:.3f}' for value in std)} |")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command in ("table", "policy-std"):
        table(args) if args.command == "table" else policy_std(args)
        return
    set_threads(args.threads)
    speed(args) if args.command == "speed" else learning(args)


if __name__ == "__main__":
    main()
