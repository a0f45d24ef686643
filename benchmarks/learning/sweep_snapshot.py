"""Snapshot of a sweep for the repository: its completed runs as a journal file, and the learning-rate table.

    python benchmarks/learning/sweep_snapshot.py --storage postgresql+psycopg2://postgres@127.0.0.1:55432/sweeps \\
        --study-name gridnavi_2e5 --out benchmarks/results/sweeps/gridnavi_2e5

writes ``<out>.log`` (an Optuna journal file holding the completed trials, curves included) and ``<out>.md`` (the
table of ``python -m sb3_hypernet.plot`` and how many runs are done). A later session, on any machine, resumes the
sweep from the journal file (``python -m sb3_hypernet.sweep ... --storage <out>.log``: the missing grid points are
enqueued again), or plots it (``python -m sb3_hypernet.plot --storage <out>.log``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import optuna
from optuna.trial import TrialState

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `python benchmarks/<kind>/<x>.py`
from benchmarks.common import new_parser
from sb3_hypernet.experiments.figures import collect, learning_rate_table
from sb3_hypernet.experiments.sweep import open_storage, point_states


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = new_parser(__doc__)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--study-name", required=True)
    parser.add_argument("--out", required=True, help="path without suffix")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    study = optuna.load_study(study_name=args.study_name, storage=open_storage(args.storage))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    journal = out.with_suffix(".log")
    partial = journal.with_suffix(".log.tmp")
    if partial.exists():
        partial.unlink()
    copy = optuna.create_study(study_name=args.study_name, storage=open_storage(str(partial)), direction="maximize")
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    copy.add_trials(complete)
    os.replace(partial, journal)

    points = point_states(study)
    done = sum(any(t.state == TrialState.COMPLETE for t in trials) for trials in points.values())
    running = sum(any(t.state == TrialState.RUNNING for t in trials) for trials in points.values())
    runs = collect(study)
    text = (
        f"# Sweep {args.study_name}: {done} of {len(points)} runs complete ({running} running)\n\n"
        "Mean final return (deterministic, 100 meta-episodes per evaluation) over the seeds completed so far; "
        "68% CIs\n"
        f"over seeds. Resume or plot from `{journal.name}`.\n\n" + (learning_rate_table(runs) if runs else "")
    )
    out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
