"""Our learning curves beside the reference implementation's, from the result files of both runners.

    python benchmarks/reports/side_by_side.py \\
        --ours benchmarks/results/gridnavi_comparison_1e6.jsonl \\
        --reference benchmarks/results/reference_side_by_side.jsonl \\
        --pair rnn_hn_256=rnn_hn --pair ti_plus_plus_hn=ti_plus_plus_hn --seeds 73 20 --frames 5e5 \\
        --table benchmarks/results/reference_side_by_side.md --figure benchmarks/results/reference_side_by_side.png

Ours come from benchmarks/learning/task_inference_comparison.py (or learning_curve.py), the reference's from
benchmarks/reference/reference_run.py: the same JSON lines, the same deterministic evaluation on --n-eval tasks. For
each pair (our method label = the reference's) and each checkpoint up to --frames, the table gives the mean meta-episode
return over the seeds both sides have reached, with the spread over seeds (min .. max; with 2 seeds a confidence
interval says little), and the mean adaptation curve (return of each inner episode) at the last checkpoint. The
figure draws both learning curves per pair, each seed thin and the mean thick. Checkpoints are matched by rank
(each runner evaluates at the first update at or after a checkpoint, a few hundred frames apart).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `python benchmarks/<kind>/<x>.py`
from benchmarks.common import new_parser, read_records
from sb3_hypernet.experiments.labels import method_colour, method_label


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = new_parser(__doc__)
    parser.add_argument(
        "--ours", required=True, help="our JSON lines (task_inference_comparison.py / learning_curve.py)"
    )
    parser.add_argument("--reference", required=True, help="the reference's JSON lines (reference_run.py)")
    parser.add_argument("--pair", action="append", required=True, help="OUR_LABEL=REFERENCE_LABEL, once per method")
    parser.add_argument("--env", default="GridNavi-v0")
    parser.add_argument("--seeds", type=int, nargs="+", default=[73, 20])
    parser.add_argument("--frames", type=float, default=5e5, help="last checkpoint to show")
    parser.add_argument("--table", default=None, help="write the Markdown table here (printed either way)")
    parser.add_argument("--figure", default=None, help="write the figure here (PNG)")
    return parser


def curves(path: Path, label: str, env: str, seeds: list[int], frames: float) -> dict[int, list[dict]]:
    """Per seed, the records of ``label`` up to ``frames`` (a few hundred frames of slack), by frames."""
    by_seed: dict[int, dict[int, dict]] = defaultdict(dict)
    for record in read_records(path):
        wanted = record["method"] == label and record.get("env", env) == env and record["seed"] in seeds
        if wanted and record["frames"] <= frames * 1.01:
            by_seed[record["seed"]][record["frames"]] = record  # a rerun's line replaces the earlier one
    return {seed: [records[f] for f in sorted(records)] for seed, records in by_seed.items()}


def summary(runs: dict[int, list[dict]], rank: int) -> tuple[float, float, float, int, list[float]] | None:
    """(mean, min, max over seeds, frames, mean adaptation curve) at checkpoint ``rank``; None if no seed has it."""
    reached = [records[rank] for records in runs.values() if len(records) > rank]
    if not reached:
        return None
    returns = [r["meta_return"]["mean"] for r in reached]
    curve = np.mean([[episode["mean"] for episode in r["inner_returns"]] for r in reached], axis=0).tolist()
    return float(np.mean(returns)), min(returns), max(returns), int(np.mean([r["frames"] for r in reached])), curve


def main() -> None:
    args = build_parser().parse_args()
    pairs = [tuple(pair.split("=", 1)) for pair in args.pair]
    lines = [
        f"{args.env}: mean deterministic meta-episode return over seeds {args.seeds} (min .. max over seeds; n = seeds "
        "reached); each side evaluates its models on sampled tasks of its own env (100 by default), deterministic "
        "actions.",
        "",
        "| method (ours / reference) | frames | ours | n | reference | n |",
        "|---|---|---|---|---|---|",
    ]
    data = {}
    for ours_label, reference_label in pairs:
        ours = curves(Path(args.ours), ours_label, args.env, args.seeds, args.frames)
        theirs = curves(Path(args.reference), reference_label, args.env, args.seeds, args.frames)
        data[(ours_label, reference_label)] = (ours, theirs)
        n_ranks = max([len(r) for r in [*ours.values(), *theirs.values()]], default=0)
        for rank in range(n_ranks):
            cells = []
            for runs in (ours, theirs):
                found = summary(runs, rank)
                n = sum(len(records) > rank for records in runs.values())
                cells += ["-", "0"] if found is None else [f"{found[0]:.2f} ({found[1]:.2f} .. {found[2]:.2f})", str(n)]
            frames = next(s[3] for s in (summary(ours, rank), summary(theirs, rank)) if s is not None)
            lines.append(f"| {ours_label} / {reference_label} | {frames} | {cells[0]} | {cells[1]} | {cells[2]} | "
                         f"{cells[3]} |")  # fmt: skip
    lines += ["", "Adaptation curve at the last checkpoint both reached (mean return of inner episodes 1..k):", ""]
    for (ours_label, reference_label), (ours, theirs) in data.items():
        # Only where both sides have runs: a side with none has no curve to show.
        common = min(len(r) for r in [*ours.values(), *theirs.values()]) if ours and theirs else 0
        if common:
            for name, runs in ((f"ours {ours_label}", ours), (f"reference {reference_label}", theirs)):
                found = summary(runs, common - 1)
                lines.append(f"- {name} at {found[3]} frames: {' '.join(f'{v:.2f}' for v in found[4])}")
    text = "\n".join(lines)
    print(text)
    if args.table:
        options = [f"--ours {args.ours}", f"--reference {args.reference}", *(f"--pair {p}" for p in args.pair)]
        options += [f"--seeds {' '.join(map(str, args.seeds))}", f"--frames {args.frames:g}"]
        command = "python benchmarks/reports/side_by_side.py " + " ".join(options)
        Path(args.table).write_text(f"# Ours beside the reference implementation\n\n`{command}`\n\n{text}\n")
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(data), figsize=(5 * len(data), 3.6), squeeze=False)
        for axis, ((ours_label, _), (ours, theirs)) in zip(axes[0], data.items(), strict=True):
            colour = method_colour(ours_label)
            sides = ((ours, "-", "sb3-hypernet"), (theirs, "--", "reference (jacooba/hyper)"))
            for runs, style, name in sides:
                for records in runs.values():
                    axis.plot([r["frames"] for r in records], [r["meta_return"]["mean"] for r in records],
                              style, color=colour, alpha=0.3, linewidth=1)  # fmt: skip
                ranks = max([len(r) for r in runs.values()], default=0)
                means = [summary(runs, rank) for rank in range(ranks)]
                label = f"{name}, mean of {len(runs)} seed{'s' if len(runs) != 1 else ''}"
                axis.plot([m[3] for m in means], [m[0] for m in means], style, color=colour, linewidth=2, label=label)
            axis.set_title(f"{method_label(ours_label)} on {args.env} (thin: one seed)")
            axis.set_xlabel("environment frames")
            axis.set_ylabel("meta-episode return (deterministic)")
            axis.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
            axis.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.figure, dpi=120)


if __name__ == "__main__":
    main()
