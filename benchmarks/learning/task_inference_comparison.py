"""RNN+HN against the task-inference baselines on GridNavi (NeurIPS 2023, Figure 5 and appendix Figure 12).

    python benchmarks/learning/task_inference_comparison.py --frames 1e6 --checkpoints 1e5 2.5e5 5e5 7.5e5 1e6 \\
        --jobs 2 --save-root /tmp/comparison_models

Trains each method from its zoo entry, as the reference implementation trains it (RNN, RNN+S, RNN+HN, TI Naive, TI,
TI++HN, VI+HN by default; VI, RNN+S and RNN+HN with a state embedding of 256, and RNN+HN with SB3's loss on request)
for --frames frames per seed (the reference's seeds 73, 20, 3), --jobs processes at a time with one torch thread
each, through benchmarks/learning/learning_curve.py, and prints per method the final mean deterministic meta-episode
return over seeds with its 68% bootstrap CI over seeds, the per-seed returns and the adaptation curve (mean return of
each inner episode, averaged over seeds). Results go to --out as JSON lines; runs already finished there are skipped
and, with --save-root, unfinished ones resume from their last checkpoint. The paper's orderings: RNN+HN first; TI++HN
above every other task-inference method; RNN+S at least as good as RNN. On GridNavi the Bayes-optimal adaptation
curve is printed below the table.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `python benchmarks/<kind>/<x>.py`
from benchmarks.common import ZOO_CONFIGS, final_records, new_parser, read_records, run_learning
from sb3_hypernet.common.evaluation import bootstrap_ci
from sb3_hypernet.experiments.labels import method_colour

_STATE_256 = (
    'policy_kwargs:"dict(state_embedding_dim=256, action_embedding_dim=0, reward_embedding_dim=8, '
    'optimizer_kwargs=dict(eps=1e-5))"'
)
#: label -> (display name, zoo config, rl_zoo3 algorithm, hyperparameter overrides as zoo's -params). Every entry
#: trains as the reference implementation does (zoo_configs/<method>.yml); the two "state 256" variants measure the
#: state embedding that the paper tuned on the grids (NeurIPS 8.2: 25 for RNN+S and RNN+HN in the comparison).
METHODS = {
    "rnn": ("RNN", "rnn.yml", "meta_ppo_lstm", []),
    "rnn_s": ("RNN+S", "rnn_s.yml", "meta_ppo_lstm", []),
    "rnn_hn": ("RNN+HN", "rnn_hn.yml", "meta_ppo_lstm", []),
    "ti_naive": ("TI Naive", "ti_naive.yml", "meta_ppo_lstm", []),
    "ti": ("TI", "ti.yml", "meta_ppo_lstm", []),
    "ti_plus_plus_hn": ("TI++HN", "ti_plus_plus_hn.yml", "meta_ppo_lstm", []),
    "vi_hn": ("VI+HN", "vi_hn.yml", "meta_ppo_lstm", []),
    "vi": ("VI", "vi.yml", "meta_ppo_lstm", []),
    "rnn_s_256": ("RNN+S, state 256", "rnn_s.yml", "meta_ppo_lstm", [_STATE_256]),
    "rnn_hn_256": ("RNN+HN, state 256", "rnn_hn.yml", "meta_ppo_lstm", [_STATE_256]),
    "rnn_hn_sb3": ("RNN+HN, SB3's loss", "sb3_loss/rnn_hn.yml", "ppo_lstm", []),
}
#: The papers' orderings on the grids (NeurIPS 2023 section 5.1 and Fig. 9): (claim, method, the methods it should
#: match or beat).
ORDERINGS = [
    ("RNN+HN first", "rnn_hn", ["rnn", "rnn_s", "ti_naive", "ti", "ti_plus_plus_hn", "vi_hn"]),
    ("TI++HN above every other task-inference method", "ti_plus_plus_hn", ["ti_naive", "ti", "vi_hn"]),
    ("RNN+S >= RNN", "rnn_s", ["rnn"]),
]
#: Bayes-optimal return of each inner episode (VariBAD's exploration of the 5x5 grid), per env.
BAYES_OPTIMAL = {"GridNavi-v0": [4.0, 11.07, 11.07, 11.07]}


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = new_parser(__doc__)
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["rnn", "rnn_s", "rnn_hn", "ti_naive", "ti", "ti_plus_plus_hn", "vi_hn"],
        choices=list(METHODS),
    )
    parser.add_argument("--env", default="GridNavi-v0")
    parser.add_argument("--frames", type=float, default=5e5, help="training frames per run")
    parser.add_argument("--checkpoints", type=float, nargs="*", default=[1e5, 2.5e5, 5e5], help="frames to evaluate at")
    parser.add_argument("--seeds", type=int, nargs="+", default=[73, 20, 3], help="the reference's seeds by default")
    parser.add_argument("--n-eval", type=int, default=100, help="meta-episodes per evaluation")
    parser.add_argument("--jobs", type=int, default=2, help="processes at a time (one torch thread each)")
    parser.add_argument(
        "--out", default="benchmarks/results/gridnavi_task_inference.jsonl", help="JSON lines of results"
    )
    parser.add_argument(
        "--save-root",
        default=None,
        help="save every run's model at its checkpoints under this folder, and resume an unfinished run from its last "
        "one (a killed comparison loses at most one checkpoint interval per run)",
    )
    parser.add_argument("--report-only", action="store_true", help="train nothing: report what --out holds")
    parser.add_argument(
        "--previous",
        nargs="*",
        default=[],
        help="earlier results (JSON lines) to show beside, at their frames; a method takes the first file that has it",
    )
    parser.add_argument("--table", default=None, help="also write the table as Markdown here")
    parser.add_argument(
        "--machine",
        default=None,
        help="the machine the runs trained on, for the table (default: this one's cores and torch version)",
    )
    parser.add_argument("--figure", default=None, help="adaptation curves beside the Bayes-optimal one (PNG)")
    return parser


#: One row of the table: display name, mean return, 68% CI (low, high), per-seed returns, adaptation curve, label.
Row = tuple[str, float, float, float, list[float], list[float], str]


def pending_runs(args: argparse.Namespace, finished: set[tuple[str, int]]) -> list[list[str]]:
    """learning_curve.py's arguments for every (method, seed) not finished in --out, resuming from --save-root."""
    runs = []
    for label in args.methods:
        _, conf, algo, overrides = METHODS[label]
        for seed in args.seeds:
            if (label, seed) in finished:
                continue
            arguments = ["--method", label, "--conf-file", str(ZOO_CONFIGS / conf), "--algo", algo, "--env", args.env]
            arguments += ["--frames", str(args.frames), "--seed", str(seed), "--n-eval", str(args.n_eval)]
            checkpoints = [c for c in args.checkpoints if c <= args.frames]
            if args.save_root:
                save_dir = Path(args.save_root) / args.env / label / f"seed{seed}"
                arguments += ["--save-dir", str(save_dir)]
                saved = sorted(save_dir.glob("*.zip"), key=lambda path: int(path.stem))
                if saved:  # continue from the last checkpoint; the ones before it are in --out already
                    arguments += ["--resume", str(saved[-1])]
                    checkpoints = [c for c in checkpoints if c > int(saved[-1].stem)]
            arguments += ["--checkpoints", *map(str, checkpoints)]
            if overrides:
                arguments += ["--hyperparams", *overrides]
            runs.append(arguments)
    return runs


def previous_results(paths: list[str], env: str) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Per method, the final returns of each earlier run on ``env`` (its last record) and their frames.

    A method takes its runs from the first of ``paths`` that has it.
    """
    previous: dict[str, list[float]] = defaultdict(list)
    previous_frames: dict[str, int] = {}
    for path in paths:
        last: dict[tuple[str, int], dict] = {}
        for record in read_records(path):
            if record.get("env") == env and record["method"] not in previous:
                key = (record["method"], record["seed"])
                if key not in last or record["frames"] >= last[key]["frames"]:
                    last[key] = record
        for (method, _), record in last.items():
            previous[method].append(record["meta_return"]["mean"])
            previous_frames[method] = record["frames"]
    return previous, previous_frames


def returns_at(out: Path, env: str, frames: int) -> dict[str, list[float]]:
    """Per method, the returns in --out at exactly ``frames`` (one per seed): today's value at an earlier budget."""
    returns: dict[str, list[float]] = defaultdict(list)
    for record in read_records(out):
        if record.get("env") == env and record["frames"] == frames and not record.get("diverged"):
            returns[record["method"]].append(record["meta_return"]["mean"])
    return returns


def interval(low: float, high: float) -> str:
    """A 68% CI as ``[low, high]``, or ``one seed`` where there is none."""
    return "one seed" if np.isnan(low) else f"[{low:.2f}, {high:.2f}]"


def default_machine(args: argparse.Namespace, rows: list[Row]) -> str:
    """This machine's cores and torch, and the torch threads and median frames/s the runs recorded."""
    import platform

    import torch

    records = [
        r for r in read_records(args.out) if r.get("env") == args.env and r["method"] in {row[6] for row in rows}
    ]
    threads = sorted({r["threads"] for r in records if r.get("threads")})
    fps = [r["fps"] for r in records if r.get("fps")]
    return (
        f"{os.cpu_count()}-core {platform.machine()} CPU, torch {torch.__version__}, "
        f"{'/'.join(map(str, threads)) or '?'} torch thread(s) per run"
        + (f", median {np.median(fps):.0f} frames/s per run" if fps else "")
    )


def write_table(
    args: argparse.Namespace, rows: list[Row], previous: dict[str, list[float]], previous_frames: dict[str, int]
) -> None:
    """The comparison as Markdown in --table, beside the earlier results."""
    header = (
        f"# {args.env}: the task-inference comparison, {args.frames:g} frames per run\n\n"
        f"`python benchmarks/learning/task_inference_comparison.py --methods {' '.join(args.methods)} "
        f"--frames {args.frames:g} "
        f"--seeds {' '.join(map(str, args.seeds))} --out {args.out}`\n\n"
        f"Machine: {args.machine or default_machine(args, rows)}.\n\n"
        "Mean deterministic meta-episode return over seeds (100 tasks per evaluation) with its 68% bootstrap CI "
        "over seeds; the adaptation curve is the mean return of each inner episode. Earlier: the same method's "
        "last result in the earlier files (its frames and seeds"
        + (", " + ", ".join(f"`{path}`" for path in args.previous) if args.previous else "")
        + "); now at those frames: this run's mean return at the same frames, where it was evaluated there.\n\n"
        "| method | return | 68% CI | per seed | adaptation curve | earlier | now at those frames |\n"
        "|---|---|---|---|---|---|---|\n"
    )
    body = ""
    for name, mean, low, high, values, curve, label in rows:
        earlier = now = "-"
        if label in previous:
            frames = previous_frames[label]
            earlier = f"{np.mean(previous[label]):.2f} ({frames} frames, {len(previous[label])} seeds)"
            today = returns_at(Path(args.out), args.env, frames).get(label)
            now = f"{np.mean(today):.2f} ({len(today)} seeds)" if today else "-"
        body += (
            f"| {name} | {mean:.2f} | {interval(low, high)} | {' '.join(f'{v:.2f}' for v in values)} | "
            f"{' '.join(f'{v:.2f}' for v in curve)} | {earlier} | {now} |\n"
        )
    if args.env in BAYES_OPTIMAL:
        optimal = BAYES_OPTIMAL[args.env]
        body += f"| Bayes-optimal | {sum(optimal):.2f} | | | {' '.join(f'{v:.2f}' for v in optimal)} | | |\n"
    ordering = "\nThe papers' orderings at this budget:\n\n" + "\n".join(orderings(rows)) + "\n"
    Path(args.table).write_text(header + body + ordering)


def orderings(rows: list[Row]) -> list[str]:
    """Whether each of :data:`ORDERINGS` holds among ``rows``: the method's mean against the best of the others, and
    whether their 68% CIs over seeds are apart."""
    found = {label: (name, mean, low, high) for name, mean, low, high, _, _, label in rows}
    lines = []
    for claim, method, others in ORDERINGS:
        present = [label for label in others if label in found]
        if method not in found or not present:
            lines.append(f"- {claim}: not measured here")
            continue
        name, mean, low, high = found[method]
        rival = max(present, key=lambda label: found[label][1])
        rival_name, rival_mean, rival_low, rival_high = found[rival]
        holds = mean >= rival_mean
        apart = low > rival_high if holds else high < rival_low
        lines.append(
            f"- {claim}: {'holds' if holds else 'does not hold'} ({name} {mean:.2f}, best of the others "
            f"{rival_name} {rival_mean:.2f}; 68% CIs {'apart' if apart else 'overlap'})"
        )
    return lines


def draw_figure(args: argparse.Namespace, rows: list[Row]) -> None:
    """The adaptation curves beside the Bayes-optimal one, as a PNG in --figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(6, 4))
    for name, _, _, _, values, curve, label in rows:
        variant = label.endswith(("_256", "_sb3"))  # a variant of a method drawn in the method's colour
        axis.plot(range(1, len(curve) + 1), curve, marker="o", label=f"{name} ({len(values)} seeds)",
                  color=method_colour(label), linestyle=":" if variant else "-")  # fmt: skip
    if args.env in BAYES_OPTIMAL:
        optimal = BAYES_OPTIMAL[args.env]
        axis.plot(range(1, len(optimal) + 1), optimal, "k--", label="Bayes-optimal")
    axis.set_xlabel("inner episode")
    axis.set_ylabel("return in the inner episode (mean over seeds)")
    axis.set_xticks(range(1, len(rows[0][5]) + 1) if rows else [])
    axis.set_title(f"{args.env} after {args.frames:g} frames: adaptation, deterministic actions")
    axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.figure, dpi=120)


def main() -> None:
    args = build_parser().parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.touch()
    finished = {(r["method"], r["seed"]) for r in final_records(out, args.frames) if r.get("env") == args.env}
    runs = pending_runs(args, finished)
    print(f"{len(runs)} runs to do ({len(finished)} already in {out})", flush=True)
    codes = [] if args.report_only else run_learning(runs, args.jobs, out)

    finals: dict[str, dict[int, dict]] = defaultdict(dict)
    for record in final_records(out, args.frames):
        if record.get("env") == args.env and record["method"] in args.methods:
            finals[record["method"]][record["seed"]] = record
    previous, previous_frames = previous_results(args.previous, args.env)
    rows: list[Row] = []
    print(f"\n{args.env}, {int(args.frames)} frames per run, seeds {args.seeds}; results in {out}")
    print(f"{'method':<30}{'return':>8}  {'68% CI over seeds':<18}  {'per seed':<24} adaptation curve (inner episodes)")
    for label in args.methods:
        runs_done = dict(sorted(finals.get(label, {}).items()))  # by seed
        finite = [r for r in runs_done.values() if not r.get("diverged")]
        values = [r["meta_return"]["mean"] for r in finite]
        name = METHODS[label][0]
        if not values:
            print(f"{name:<30}{'no finished run':>8}")
            continue
        low, high = bootstrap_ci(np.array(values)) if len(values) > 1 else (float("nan"), float("nan"))
        curve = np.mean([[s["mean"] for s in r["inner_returns"]] for r in finite], 0)
        per_seed = " ".join(f"{v:.2f}" for v in values)
        diverged = len(runs_done) - len(finite)
        rows.append((name, float(np.mean(values)), low, high, values, curve.tolist(), label))
        print(
            f"{name:<30}{np.mean(values):>8.2f}  {interval(low, high):<18}  {per_seed:<24} "
            f"{' '.join(f'{v:.2f}' for v in curve)}" + (f"  ({diverged} diverged)" if diverged else "")
        )
    if args.env in BAYES_OPTIMAL:
        optimal = BAYES_OPTIMAL[args.env]
        curve = " ".join(f"{v:.2f}" for v in optimal)
        print(f"{'Bayes-optimal':<30}{sum(optimal):>8.2f}  {'':<18}    {'':<24} {curve}")
    print("\nThe papers' orderings at this budget:", *orderings(rows), sep="\n")
    if args.table:
        write_table(args, rows, previous, previous_frames)
    if args.figure and rows:
        draw_figure(args, rows)
    if any(codes):
        print(f"{sum(1 for c in codes if c)} run(s) exited with an error (diverged runs exit with 1)")


if __name__ == "__main__":
    main()
