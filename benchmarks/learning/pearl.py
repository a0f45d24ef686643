"""PEARL and Hyper-PEARL (ICML 2021, section 4): training speed, learning curves with PEARL's evaluation protocol,
and their table.

    python benchmarks/learning/pearl.py speed --threads 1
    python benchmarks/learning/pearl.py learning --env PointRobotTask-v0 --configs pearl hyper_pearl --seeds 0 1 \\
        --checkpoints 20000 50000 100000 --out benchmarks/results/pearl_point_robot.jsonl --save-root /tmp/pearl
    python benchmarks/learning/pearl.py table --out benchmarks/results/pearl_point_robot.jsonl

``speed``: gradient steps per second (one meta-batch update: 16 tasks x 256 transitions, contexts of 100) and
environment steps per second of collection, of each policy at the zoo entries' sizes, on PointRobotTask-v0 and
(with MuJoCo) CheetahVelTask-v0; interleaved repeats, medians, and the ratio Hyper-PEARL / PEARL.

``learning``: each zoo config on --env for each seed, built as ``python -m sb3_hypernet.train --algo pearl`` builds
it (``-params``-style overrides with --hyperparams); at each checkpoint (the first iteration boundary past it), PEARL's
evaluation on the test tasks (``evaluate_pearl``: --episodes episodes per task, the posterior after
--exploration-episodes), one JSON line per checkpoint with the return of each episode. With --save-root a run saves
its model and buffers at every checkpoint and a restarted command resumes it from the last one.

``table``: the learning records as a Markdown table: per config and checkpoint, the mean over seeds of the return of
each episode (the adaptation curve) and of the last, with each seed's last-episode return.
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


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = new_parser(__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    speed = commands.add_parser("speed", help="gradient and environment steps per second")
    speed.add_argument("--envs", nargs="+", default=["PointRobotTask-v0", "CheetahVelTask-v0"])
    speed.add_argument("--updates", type=int, default=20, help="gradient steps per measurement")
    speed.add_argument("--repeats", type=int, default=3)
    speed.add_argument("--device", default="cpu", help="torch device of the networks (cpu, cuda)")
    add_threads_option(speed, 1)
    learning = commands.add_parser("learning", help="learning curves with PEARL's evaluation")
    learning.add_argument("--env", required=True, help="a task env id, e.g. PointRobotTask-v0")
    learning.add_argument("--configs", nargs="+", default=["pearl", "hyper_pearl"], help="zoo config names")
    learning.add_argument("--seeds", type=int, nargs="+", default=[0])
    learning.add_argument("--checkpoints", type=float, nargs="+", required=True, help="environment steps")
    learning.add_argument("--hyperparams", nargs="*", default=[], help="entry overrides as key:value (zoo's -params)")
    learning.add_argument("--episodes", type=int, default=3)
    learning.add_argument("--exploration-episodes", type=int, default=1)
    learning.add_argument("--out", required=True, help="JSON-lines file the records are appended to")
    learning.add_argument("--save-root", default=None, help="folder for checkpoints (resumable runs)")
    add_threads_option(learning, 1)
    table = commands.add_parser("table", help="the learning records as a Markdown table")
    table.add_argument("--out", required=True)
    return parser


def speed(args: argparse.Namespace) -> None:
    import envs  # noqa: F401
    from sb3_hypernet.experiments.zoo import build_model

    rows = []
    for env_id in args.envs:
        try:
            settings = dict(algo="pearl", seed=0, device=args.device, n_train_tasks=16, initial_steps=200,
                            gradient_steps=0)  # fmt: skip
            models = {name: build_model(name, env_id, **settings)[0] for name in ("pearl", "hyper_pearl")}
        except Exception as error:
            print(f"{env_id}: skipped ({type(error).__name__}: {error})")
            continue
        for model in models.values():
            model.learn(1)  # fills every task's buffers (one iteration of collection, no update)
        timings: dict[str, dict[str, list[float]]] = {name: {"updates": [], "steps": []} for name in models}
        for _ in range(args.repeats):
            for name, model in models.items():  # interleaved
                began = time.perf_counter()
                model.train(args.updates, model.batch_size)
                timings[name]["updates"].append(args.updates / (time.perf_counter() - began))
                steps = model.num_timesteps
                began = time.perf_counter()
                model._collect(0, 400, False, True, _NullCallback())
                timings[name]["steps"].append((model.num_timesteps - steps) / (time.perf_counter() - began))
        for name in models:
            rows.append((env_id, name, statistics.median(timings[name]["updates"]),
                         statistics.median(timings[name]["steps"])))  # fmt: skip
    import torch

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), device {args.device}; medians of "
        f"{args.repeats} interleaved repeats"
    )
    print("| env | config | gradient steps/s | env steps/s |\n|---|---|---|---|")
    for env_id, name, updates, steps in rows:
        print(f"| {env_id} | {name} | {updates:.1f} | {steps:.0f} |")
    for env_id in {row[0] for row in rows}:
        mlp, hyper = (
            next(row for row in rows if row[0] == env_id and row[1] == name) for name in ("pearl", "hyper_pearl")
        )
        print(f"{env_id}: Hyper-PEARL / PEARL gradient steps/s {hyper[2] / mlp[2]:.2f}")


class _NullCallback:
    """The callback interface PEARL's collection calls, doing nothing (speed measurements)."""

    def update_locals(self, _: dict[str, Any]) -> None:
        pass

    def on_step(self) -> bool:
        return True


def learning(args: argparse.Namespace) -> None:
    import gymnasium as gym

    import envs  # noqa: F401
    from sb3_hypernet.pearl import PEARL, evaluate_pearl

    def evaluate(model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        result = evaluate_pearl(model, args.env, n_episodes=args.episodes,
                                exploration_episodes=args.exploration_episodes, seed=10_000)  # fmt: skip
        summary = result.summary()
        return summary, {"reference": summary.get("reference")}

    def load(path: Path) -> Any:
        model = PEARL.load(path, env=gym.make(args.env), device="cpu")
        model.load_replay_buffer(path.with_suffix(".pkl"))
        return model

    def save(model: Any, path: Path) -> None:
        model.save(path)
        model.save_replay_buffer(path.with_suffix(".pkl"))

    run_to_checkpoints(args, "pearl", evaluate, load, save)


def table(args: argparse.Namespace) -> None:
    records = read_records(args.out)
    if not records:
        print(f"no records in {args.out}")
        return
    n_episodes = len(records[0]["returns"])
    header = " | ".join(f"episode {i + 1}" for i in range(n_episodes))
    print(f"| env | config | steps | seeds | {header} | last episode per seed |")
    print("|---|---|---|---|" + "---|" * n_episodes + "---|")
    for (env_id, config, checkpoint), runs in runs_by_checkpoint(records):
        means = [statistics.mean(r["returns"][i] for r in runs) for i in range(n_episodes)]
        seeds = ", ".join(f"{r['seed']}: {r['returns'][-1]:.2f}" for r in runs)
        cells = " | ".join(f"{m:.2f}" for m in means)
        print(f"| {env_id} | {config} | {checkpoint} | {len(runs)} | {cells} | {seeds} |")
    reference = next((r["reference"] for r in records if r.get("reference")), None)
    if reference:
        print(f"\n{reference['label']} return per episode: {reference['inner_returns'][0]:.2f}")


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "table":
        table(args)
        return
    set_threads(args.threads)
    speed(args) if args.command == "speed" else learning(args)


if __name__ == "__main__":
    main()
