"""What the benchmark scripts share: the repository's paths, the ``--threads`` option, the JSON-lines result files,
and the runner of benchmarks/learning/learning_curve.py for the sweeps.

The scripts run as ``python benchmarks/<kind>/<script>.py`` or ``python -m benchmarks.<kind>.<script>`` from the
repository root. Each puts the repository root first on ``sys.path`` before importing this module, so that the first
form finds the ``benchmarks`` package too. Nothing heavy is imported here (torch only inside :func:`set_threads`):
scripts whose ``--help`` or dry run must stay quick import this module before anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
ZOO_CONFIGS = REPO_ROOT / "zoo_configs"
RESULTS = REPO_ROOT / "benchmarks" / "results"
LEARNING_SCRIPT = REPO_ROOT / "benchmarks" / "learning" / "learning_curve.py"


def new_parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser described by the first paragraph of a script's docstring."""
    return argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])


def add_threads_option(
    parser: argparse.ArgumentParser, default: int | None = None, help_text: str | None = None
) -> None:
    """``--threads``: torch's intra-op threads (None: torch's choice); apply it with :func:`set_threads`."""
    if help_text is None:
        help_text = "torch threads (default: torch's choice)" if default is None else "torch threads"
    parser.add_argument("--threads", type=int, default=default, help=help_text)


def set_threads(threads: int | None) -> None:
    """Set torch's threads to ``threads``; None or 0 leaves torch's choice."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def read_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a JSON-lines result file, one per non-blank line."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def append_record(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append ``record`` as one JSON line; the file and its folder are made if missing."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as file:
        file.write(json.dumps(record) + "\n")


def add_sweep_options(parser: argparse.ArgumentParser) -> None:
    """``--n-eval``, ``--jobs`` and ``--out`` of the scripts that sweep learning runs over settings."""
    parser.add_argument("--n-eval", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2, help="processes at a time (one torch thread each)")
    parser.add_argument("--out", default=None, help="JSON lines of every checkpoint (default: a temporary file)")


def sweep_output(out: str | None) -> Path:
    """Where a sweep's runs append their results: ``out``, or a new temporary file."""
    return Path(out or tempfile.mkstemp(suffix=".jsonl")[1])


def run_learning(runs: list[list[str]], jobs: int, out: Path) -> list[int]:
    """Run the learning script once per argument list, ``jobs`` at a time with one torch thread each; the
    results go to ``out`` as JSON lines. Returns the exit codes."""
    running: list[subprocess.Popen] = []
    codes: list[int] = []
    for arguments in runs:
        if len(running) >= jobs:
            codes.append(running.pop(0).wait())
        command = [sys.executable, str(LEARNING_SCRIPT), *arguments, "--threads", "1", "--out", str(out)]
        running.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))
    codes += [process.wait() for process in running]
    return codes


def final_records(out: Path, frames: float) -> list[dict[str, Any]]:
    """The records of runs that reached ``frames`` or diverged."""
    return [r for r in read_records(out) if r.get("diverged") or r["frames"] >= frames]


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Zoo entry overrides given as ``key:value`` (rl_zoo3's ``-params``), the values read as YAML."""
    import yaml

    return {key: yaml.safe_load(value) for key, _, value in (item.partition(":") for item in items)}


def runs_by_checkpoint(records: list[dict[str, Any]]) -> list[tuple[tuple[str, str, int], list[dict[str, Any]]]]:
    """The records of run_to_checkpoints grouped by (env, config, checkpoint), sorted, each group's runs by seed."""
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["env"], record["config"], record["checkpoint"]), []).append(record)
    return [(key, sorted(groups[key], key=lambda r: r["seed"])) for key in sorted(groups)]


def run_to_checkpoints(
    args: argparse.Namespace,
    algo: str,
    evaluate: Any,
    load: Any,
    save: Any,
) -> None:
    """Train every ``--configs`` x ``--seeds`` run of a meta-RL algorithm on ``--env`` to each of ``--checkpoints``
    (environment steps) that ``--out`` does not hold yet, evaluate it there and append one record per checkpoint.

    A run starts from its zoo entry (``build_model``, with ``--hyperparams`` overrides) or, with ``--save-root``, from
    its last saved checkpoint, and saves one at every checkpoint.

    :param args: the command line (env, configs, seeds, checkpoints, hyperparams, out, save_root)
    :param algo: the rl_zoo3 algorithm name (``pearl``, ``maml``)
    :param evaluate: ``evaluate(model) -> (summary, extra record fields)``
    :param load: ``load(path) -> model``, a model saved by ``save``
    :param save: ``save(model, path)``, with ``path`` ending in ``.zip``
    """
    import time

    from sb3_hypernet.experiments.zoo import build_model, load_hyperparams

    checkpoints = sorted(int(c) for c in args.checkpoints)
    records = read_records(args.out) if Path(args.out).exists() else []
    done = {(r["config"], r["seed"], r["checkpoint"]) for r in records}
    overrides = parse_overrides(args.hyperparams)
    for config in args.configs:
        entry = load_hyperparams(config, args.env, algo)
        for seed in args.seeds:
            todo = [c for c in checkpoints if (config, seed, c) not in done]
            if not todo:
                continue
            save_dir = Path(args.save_root) / config / args.env / f"seed{seed}" if args.save_root else None
            saved = sorted(save_dir.glob("*.zip"), key=lambda p: int(p.stem)) if save_dir and save_dir.exists() else []
            if saved:
                model = load(saved[-1])
                print(f"{config} seed {seed}: resumed at {model.num_timesteps} steps", flush=True)
            else:
                model, _ = build_model(config, args.env, seed=seed, algo=algo, **overrides)
            began, steps_before = time.perf_counter(), model.num_timesteps
            for checkpoint in todo:
                if model.num_timesteps < checkpoint:
                    model.learn(checkpoint - model.num_timesteps, reset_num_timesteps=False)
                summary, extra = evaluate(model)
                record = {
                    "config": config, "env": args.env, "seed": seed, "checkpoint": checkpoint,
                    "steps": model.num_timesteps, "iterations": model.iterations,
                    "returns": [stage["mean"] for stage in summary["inner_returns"]],
                    "n_tasks": summary["n_meta_episodes"], **extra, "hyperparams": {**entry, **overrides},
                    "steps_per_second": (model.num_timesteps - steps_before) / (time.perf_counter() - began),
                }  # fmt: skip
                append_record(args.out, record)
                print(f"{config} seed {seed}: {model.num_timesteps} steps, returns {record['returns']}", flush=True)
                if save_dir is not None:
                    save_dir.mkdir(parents=True, exist_ok=True)
                    save(model, save_dir / f"{model.num_timesteps}.zip")
