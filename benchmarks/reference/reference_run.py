"""Learning curve of the authors' reference implementation (jacooba/hyper on GitHub) in this repo's result format.

    python benchmarks/reference/reference_run.py --reference /tmp/ref --python /work/refenv/bin/python \\
        --method rnn_hn --seed 73 --frames 5e5 --checkpoints 1e5 2.5e5 5e5 --n-eval 100 \\
        --out benchmarks/results/reference_side_by_side.jsonl

It trains the reference's own code, imported from the checkout at --reference (nothing of it is copied here), with
the reference's own interpreter (--python), for a side-by-side comparison with benchmarks/learning/learning_curve.py.
The hyperparameters are the reference's: its experiment set for the env in experiment_sets/all_envs.py ("grid" for
GridNavi-v0: shared arguments, then the model's dict from experiment_sets/models.py, then lr_vae, lr_policy and seed),
turned into a ``main.py --env-type ... --key value ...`` command line as its run_experiments.py does (sorted keys,
str(value), split on spaces as its shell does). --method rnn_hn is its final RNN_HN ("RNN+HN": no pre-collection, no
VAE pre-training), ti_plus_plus_hn its TI_pp_HN_Grid ("TI++HN_g": 100 warm-up updates with the true task). The
repository documents no tuned lr_policy for the grid (the set searches 3e-3 1e-3 3e-4 1e-4 3e-5 over seeds 73 20 3),
so the default is 1e-3, the rate of this repo's zoo configs for RNN+HN and TI++HN on GridNavi.

benchmarks/reference/reference_worker.py runs under --python: it starts the reference's main.py with its MetaLearner
extended from outside: at the first update at or after each checkpoint it evaluates with the reference's own
utils.evaluation.evaluate (deterministic actions, 4 inner episodes in the reference's own BAMDP env wrapper) on
--n-eval tasks drawn by the reference env after seeding with --eval-seed, and saves the training state. This script
turns each evaluation into one JSON line of --out, as learning_curve.py writes them: mean return of each inner episode
and of the meta-episode (their sum) with 68% bootstrap CIs over tasks (sb3_hypernet.evaluation), training frames/s
(evaluation and saving excluded), and the reference's arguments. Killed and run again with the same command, it
appends the evaluations already saved and resumes training from the latest saved state (fresh meta-episodes there);
finished checkpoints are not redone. Runs live in --save-dir (default: ~/.cache/sb3-hypernet-reference/<run name>).

--vec-env dummy (default) steps the reference's 16 training envs in its own in-process DummyVecEnv (one process, like
this repo's runs; its get_task is made to return one row per env, as its SubprocVecEnv's does); subproc uses the
reference's SubprocVecEnv, 16 worker processes as in the papers. The two differ in task sampling only: the env draws
goals from Python's `random`, seeded by --seed in one process, but reseeded from OS entropy in each forked worker.

Install the reference's interpreter once, outside this repo's environment (it needs gym 0.17, numpy < 1.24):

    python -m venv /work/refenv
    /work/refenv/bin/pip install torch==2.13.0          # any recent CPU build; the reference pinned torch 1.5
    /work/refenv/bin/pip install --no-deps gym==0.17.3  # its pins (Pillow<=8, pyglet<=1.5) have no Python 3.11 wheels
    /work/refenv/bin/pip install "numpy==1.23.5" "cloudpickle>=1.2,<1.7" matplotlib pillow tensorboard setuptools
    git clone <jacooba/hyper> /tmp/ref                  # checked with commit 3a7639b

Short check (a checkpoint at 1e4 frames, 20 tasks): add --frames 2e4 --checkpoints 1e4 2e4 --n-eval 20.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `python benchmarks/<kind>/<x>.py`
from benchmarks.common import add_threads_option, append_record, new_parser, read_records

SETS = {"GridNavi-v0": "grid", "GridNaviDense-v0": "grid-dense", "GridNaviShow-v0": "grid-show"}
MODELS = {"rnn_hn": "RNN_HN", "ti_plus_plus_hn": "TI_pp_HN_Grid"}
MARKER = "@@reference-checkpoint"
WORKER = Path(__file__).resolve().with_name("reference_worker.py")


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = new_parser(__doc__)
    parser.add_argument("--reference", required=True, help="checkout of the reference implementation (jacooba/hyper)")
    parser.add_argument(
        "--python",
        default=os.environ.get("REFERENCE_PYTHON", sys.executable),
        help="interpreter with the reference's dependencies (default: $REFERENCE_PYTHON, else this one)",
    )
    parser.add_argument("--method", choices=sorted(MODELS), default="rnn_hn")
    parser.add_argument("--env", choices=sorted(SETS), default="GridNavi-v0")
    parser.add_argument("--seed", type=int, default=73)
    parser.add_argument("--frames", type=float, default=5e5, help="training frames (rounded up to whole updates)")
    parser.add_argument("--checkpoints", type=float, nargs="*", default=None, help="frame counts to evaluate at")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="the reference's lr_policy")
    parser.add_argument("--lr-vae", type=float, default=None, help="the reference's lr_vae (default: the set's)")
    parser.add_argument("--param", nargs="*", default=[], metavar="KEY=VALUE", help="more main.py arguments (override)")
    parser.add_argument("--n-eval", type=int, default=100, help="tasks (meta-episodes) per evaluation")
    parser.add_argument("--eval-seed", type=int, default=10_000, help="seed of the evaluation tasks")
    parser.add_argument("--vec-env", choices=["dummy", "subproc"], default="dummy")
    add_threads_option(parser, default=1, help_text="torch threads (and OMP_NUM_THREADS) of the run")
    parser.add_argument("--save-dir", default=None, help="states and evaluations of the run (default: see above)")
    parser.add_argument("--out", default=None, help="append one JSON line per checkpoint to this file")
    parser.add_argument("--dry-run", action="store_true", help="print the reference command line and exit")
    return parser


def load_experiment(reference: Path, set_name: str, model_name: str) -> tuple[dict, dict]:
    """The reference's experiment set and model dict (plain dicts, importing only experiment_sets/)."""
    sys.path.insert(0, str(reference))
    try:
        import experiment_sets.all_envs as all_envs
        import experiment_sets.models as models
    finally:
        sys.path.remove(str(reference))
        for name in [name for name in sys.modules if name.split(".")[0] == "experiment_sets"]:
            del sys.modules[name]
    sets = [s for s in all_envs.GPU_EXPERIMENT_SETS + all_envs.CPU_EXPERIMENT_SETS if s["set_name"] == set_name]
    if len(sets) != 1:
        raise SystemExit(f"the reference has {len(sets)} experiment sets named {set_name!r}")
    return sets[0], getattr(models, model_name)


def parse_value(text: str) -> Any:
    """A --param value as JSON where it parses as JSON, else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def reference_arguments(args: argparse.Namespace, reference: Path) -> tuple[dict, str]:
    """main.py's arguments as the reference's run_experiments.py merges them, and the model's label."""
    experiment_set, model = load_experiment(reference, SETS[args.env], MODELS[args.method])
    search = experiment_set["search_arguments"]
    if args.learning_rate not in search["lr_policy"]:
        print(f"note: lr_policy {args.learning_rate:g} is outside the reference's grid {search['lr_policy']}")
    merged = {**experiment_set["shared_arguments"], **model}
    merged["lr_vae"] = args.lr_vae if args.lr_vae is not None else search["lr_vae"][0]
    merged["lr_policy"] = args.learning_rate
    merged["seed"] = args.seed
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--param takes KEY=VALUE, not {item!r}")
        merged[key.lstrip("-")] = parse_value(value)
    merged["num_frames"] = int(args.frames)
    return merged, model["exp_label"]


def command_line(merged: dict) -> list[str]:
    """``--key value`` pairs in sorted order, each value's str() split on spaces (as the reference's shell does)."""
    out = []
    for key, value in sorted(merged.items()):
        out += [f"--{key}", *str(value).split()]
    return out


def provenance(reference: Path) -> dict:
    """Commit of the checkout (if it is a git one) and a digest of its Python files, to tell versions apart."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(reference), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    digest = hashlib.sha256()
    for path in sorted(reference.rglob("*.py")):
        digest.update(str(path.relative_to(reference)).encode() + b"\0" + path.read_bytes())
    return {"reference_commit": commit, "reference_py_sha256": digest.hexdigest()[:16]}


def die_with_parent() -> None:
    """In the child: get SIGTERM when this process dies, however it dies (Linux's PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def main() -> None:
    args = build_parser().parse_args()
    reference = Path(args.reference).resolve()
    if not (reference / "main.py").exists() or not (reference / "experiment_sets").is_dir():
        raise SystemExit(
            f"{reference} is not a checkout of the reference implementation (no main.py, experiment_sets/)"
        )
    total = int(args.frames)
    checkpoints = sorted({int(c) for c in (args.checkpoints or [total])})
    if checkpoints[-1] > total:
        raise SystemExit(f"checkpoint {checkpoints[-1]} is past --frames {total}")
    merged, label = reference_arguments(args, reference)
    # One run directory per training configuration: a rerun with a larger --frames continues the same run.
    config = {k: v for k, v in merged.items() if k != "num_frames"}
    config.update(n_eval=args.n_eval, eval_seed=args.eval_seed, vec_env=args.vec_env)
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:8]
    run_name = f"{args.env}_{args.method}_seed{args.seed}_lr{args.learning_rate:g}_{args.vec_env}_{digest}"
    run_dir = Path(args.save_dir or Path.home() / ".cache" / "sb3-hypernet-reference" / run_name).resolve()
    merged["results_log_dir"] = str(run_dir / "tensorboard")
    main_args = command_line(merged)
    print(
        f"reference {label} ({args.method}) on {args.env}: cd {reference} && {args.python} main.py "
        f"{' '.join(main_args)}"
    )
    print(f"run directory {run_dir}")
    if args.dry_run:
        raise SystemExit(0)

    # After the dry run, which needs neither.
    import numpy as np

    from sb3_hypernet import MetaEvaluation

    run_dir.mkdir(parents=True, exist_ok=True)
    about = provenance(reference)

    def record_for(result: dict) -> dict:
        """One worker evaluation as a result record (learning_curve.py's format, plus the reference's run)."""
        summary = MetaEvaluation(inner_returns=np.asarray(result["inner_returns"], dtype=np.float64)).summary()
        record = dict(vars(args), reference=str(reference), frames_budget=total, checkpoints=checkpoints)
        record.update(
            implementation="reference",
            reference_label=label,
            **about,
            reference_args=merged,
            run_dir=str(run_dir),
            frames=result["frames"],
            checkpoint=result["targets"],
            updates=result["updates"],
            fps=result["fps"],
            learning_rate=args.learning_rate,
            train_seconds=result["train_seconds"],
            eval_seconds=result["eval_seconds"],
            cpu_seconds=result["cpu_seconds"],  # the training process's CPU time, evaluations included
            **summary,
            diverged=not result["finite"],
        )
        return record

    def report(result: dict) -> None:
        """Print one checkpoint, and append it to --out unless that file has it already."""
        record = record_for(result)
        meta = record["meta_return"]
        inner = " ".join(f"{s['mean']:6.2f}" for s in record["inner_returns"])
        print(
            f"{record['frames']:>9} {meta['mean']:>12.2f} [{meta['ci_low']:6.2f}, {meta['ci_high']:6.2f}]  {inner}"
            f"   {record['fps']:>6.0f}",
            flush=True,
        )
        if args.out:
            out = Path(args.out)
            if out.exists():
                for old in read_records(out):
                    if old.get("run_dir") == record["run_dir"] and old.get("frames") == record["frames"]:
                        return
            append_record(out, record)

    print(f"{'frames':>9} {'meta return':>12} {'68% CI':>17}  per-inner-episode returns   {'fps':>6}")
    done = set()
    for path in sorted(run_dir.glob("eval_*.json"), key=lambda p: int(p.stem.split("_")[1])):
        result = json.loads(path.read_text())
        report(result)  # evaluations saved by an earlier, killed run
        done.update(result["targets"])
    pending = [c for c in checkpoints if c not in done]
    if not pending:
        print("all checkpoints done")
        raise SystemExit(0)

    command = [
        args.python, str(WORKER), "--reference", str(reference), "--save-dir", str(run_dir),
        "--checkpoints", *map(str, pending), "--n-eval", str(args.n_eval), "--eval-seed", str(args.eval_seed),
        "--vec-env", args.vec_env, "--threads", str(args.threads), "--", *main_args,
    ]  # fmt: skip
    threads = str(args.threads)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, PYTHONUNBUFFERED="1", PYTHONWARNINGS="ignore")
    started = time.time()
    worker = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, preexec_fn=die_with_parent
    )

    def stop(signum: int, frame: Any) -> None:
        worker.terminate()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for line in worker.stdout:
        if line.startswith(MARKER):
            report(json.loads(line[len(MARKER) :]))
        else:
            print(line, end="", flush=True)
    code = worker.wait()
    print(f"reference worker exited with {code} after {time.time() - started:.0f} s")
    raise SystemExit(code)


if __name__ == "__main__":
    main()
