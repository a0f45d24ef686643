"""Shared by the sweep scripts: run benchmarks/learning/learning_curve.py in parallel processes and read its results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LEARNING_SCRIPT = Path(__file__).resolve().parent / "learning" / "learning_curve.py"


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


def final_records(out: Path, frames: float) -> list[dict]:
    """The records of runs that reached ``frames`` or diverged."""
    records = [json.loads(line) for line in out.read_text().splitlines()]
    return [r for r in records if r.get("diverged") or r["frames"] >= frames]
