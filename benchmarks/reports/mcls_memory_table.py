"""MC-LS memory figures from benchmarks/learning/learning_curve.py --out as a Markdown table: per env and checkpoint,
each inner episode's return, rooms passed, check accuracy, how often the end is reached, and end-choice accuracy.

    python benchmarks/reports/mcls_memory_table.py benchmarks/results/mcls_learning.jsonl
    python benchmarks/reports/mcls_memory_table.py benchmarks/results/mcls_checkpoints.jsonl  # evaluate_checkpoints.py

The figures are means over the evaluation meta-episodes of one run, with deterministic actions unless the record says
"sampled" (benchmarks/learning/evaluate_checkpoints.py); end-choice accuracy is over the episodes that reached the end
("-" where none did). Is the signal-dependent end choice learned (accuracy
above 0.5 on LS), and does episode 2 beat episode 1 on LSH (the side found in episode 1, remembered in episode 2)?
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `python benchmarks/<kind>/<x>.py`
from benchmarks.common import new_parser, read_records


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = new_parser(__doc__)
    parser.add_argument(
        "results", type=Path, help="JSON lines of benchmarks/learning/learning_curve.py --out on MC-LS ids"
    )
    return parser


def number(stats: dict[str, float], digits: int = 2) -> str:
    """A statistic's mean, or "-" where it has none (NaN: no episode it applies to)."""
    return "-" if math.isnan(stats["mean"]) else f"{stats['mean']:.{digits}f}"


def main() -> None:
    args = build_parser().parse_args()
    records = [record for record in read_records(args.results) if "inner_statistics" in record]
    if not records:
        raise SystemExit(f"{args.results}: no records with MC-LS statistics")

    print(
        "| env | method, seed | frames | actions | meta return (reference) | episode | return | rooms passed "
        "| check accuracy | end reached | end-choice accuracy |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    order = {"deterministic": 0, "sampled": 1}
    for record in sorted(
        records, key=lambda r: (r["env"], r["method"], r["seed"], r["frames"], order[r.get("mode", "deterministic")])
    ):
        statistics = record["inner_statistics"]
        reference = record.get("reference")
        meta = f"{record['meta_return']['mean']:.2f}" + (
            f" ({reference['label']} {reference['meta_return']:.1f})" if reference else ""
        )
        for episode, inner in enumerate(record["inner_returns"]):
            run = [record["env"], f"{record['method']}, {record['seed']}", f"{record['frames']:,}"]
            head = [*run, record.get("mode", "deterministic"), meta] if episode == 0 else [""] * 5
            row = [
                *head,
                str(episode + 1),
                f"{inner['mean']:.2f}",
                number(statistics["rooms_passed"][episode], 1),
                number(statistics["check_accuracy"][episode]),
                number(statistics["end_reached"][episode]),
                number(statistics["end_choice_accuracy"][episode]),
            ]
            print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
