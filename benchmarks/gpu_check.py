"""The first session on a GPU machine in one command: the CUDA tests, the speed benchmarks on the GPU, and the first
update's losses on the GPU against the CPU, summed up in one Markdown file.

    python benchmarks/gpu_check.py --device cuda                   # one H100: a few minutes, --budget at most
    python benchmarks/gpu_check.py --device cpu --quick --threads 1 --out /tmp/gpu_check_cpu.md   # the CI dry run

Steps, each in its own process with its own timeout, all within --budget seconds (a step that would start past it is
reported as not run):

(a) the CUDA tests: every test file that asks ``torch.cuda.is_available()`` (tests/test_device_options.py today),
    with pytest; with --device cpu they are reported as skipped, not failed. A CUDA test skipped on a CUDA machine
    fails the step.
(d) benchmarks/probes/device_parity.py: the same seeded RNN+HN model (zoo entry, GridNavi-v0) updated once on the
    device and once on the CPU from the same rollout; the logged losses agree within 1e-4 relative, TF32 off.
(c) benchmarks/speed/rollout_buffer.py (256, 1024 and 4096 envs) and benchmarks/speed/generated_layers.py (batches
    240, 4096 and 15360: a 16-env minibatch, a 4096-env rollout step, a 1024-env minibatch) on the device.
(b) benchmarks/speed/scaling.py: RNN and RNN+HN at 256, 1024 and 4096 envs, without and with --tf32 (one process
    each: TF32 is a process-wide setting).
(e) the ICML 2021 meta-RL algorithms on the device: PEARL's and Hyper-PEARL's gradient steps/s at the reference's
    sizes on HalfCheetah-Vel (benchmarks/learning/pearl.py speed; the point robot's CPU sizes with --quick), and
    MAML's, Context-MAML's and Hyper-MAML's seconds per meta-iteration on Navigation2D (benchmarks/learning/maml.py
    speed). Last, so that a short budget spends itself on the steps above first.

--quick runs the same steps at tiny sizes (a few envs, a few repeats). The file (default
benchmarks/results/gpu_check_<device>.md, <device> the GPU's name or "cpu") gives the machine, torch and its
threads, each step's status, wall time and main figures, then each step's command and the end of its output. The
exit status is 1 if a step failed, timed out or did not run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root, for `python benchmarks/gpu_check.py`
from benchmarks.common import REPO_ROOT, RESULTS, add_threads_option, new_parser

PASS, FAIL, TIMEOUT, SKIPPED, NOT_RUN = "pass", "FAIL", "TIMEOUT", "skipped", "NOT RUN"
#: Output lines of a step kept in the report.
TAIL_LINES = 40
#: The old gym package's import banner (4 lines in every step that imports it), left out of the report.
BANNER = (
    "Gym has been unmaintained",
    "Please upgrade to Gymnasium",
    "Users of this version of Gym",
    "See the migration guide at https://gymnasium",
)


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = new_parser(__doc__)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="where the steps run")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a few envs, a few repeats (a dry run)")
    parser.add_argument("--out", type=Path, default=None, help="the Markdown file (default: see above)")
    parser.add_argument("--budget", type=float, default=540.0, help="seconds for all steps together")
    add_threads_option(parser, help_text="torch threads of every step (default: torch's choice)")
    return parser


@dataclass
class Step:
    """One command of the check, with how long it may take and how to read its figures from its output."""

    name: str
    command: list[str]
    timeout: float
    figures: Callable[[str], str] = lambda output: ""
    skip: str | None = None  # why it does not run here
    #: Extra failure found in the output although the command exited with 0 (e.g. CUDA tests skipped on a GPU).
    problem: Callable[[str], str | None] = lambda output: None


@dataclass
class Outcome:
    """What a step did."""

    step: Step
    status: str
    seconds: float = 0.0
    output: str = ""
    figures: str = ""
    notes: list[str] = field(default_factory=list)


def run_step(step: Step, seconds_left: float, env: dict[str, str] | None = None) -> Outcome:
    """Run ``step`` in its own process group, killed (children included) at its timeout or at ``seconds_left``."""
    if step.skip:
        return Outcome(step, SKIPPED, notes=[step.skip])
    limit = min(step.timeout, seconds_left)
    if limit < 5:
        return Outcome(step, NOT_RUN, notes=["the time budget was spent"])
    began = time.perf_counter()
    process = subprocess.Popen(
        step.command,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: a timeout kills its workers too
    )
    try:
        output, _ = process.communicate(timeout=limit)
        status = PASS if process.returncode == 0 else FAIL
        notes = [] if status == PASS else [f"exit status {process.returncode}"]
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        status, notes = TIMEOUT, [f"killed after {limit:.0f} s"]
    seconds = time.perf_counter() - began
    if status == PASS:
        problem = step.problem(output)
        if problem:
            status, notes = FAIL, [problem]
    try:
        figures = step.figures(output)
    except (ValueError, KeyError, IndexError) as error:  # a format the reader does not know: the output is below
        figures = f"(figures unreadable: {error})"
    return Outcome(step, status, seconds, output, figures, notes)


def failed(outcomes: list[Outcome]) -> bool:
    """Whether any step failed, timed out or did not run (skipped steps do not count)."""
    return any(outcome.status in (FAIL, TIMEOUT, NOT_RUN) for outcome in outcomes)


def cuda_test_files() -> list[str]:
    """The test files with CUDA-only tests: those that ask torch whether CUDA is available."""
    files = sorted(REPO_ROOT.glob("tests/test_*.py"))
    return [str(path.relative_to(REPO_ROOT)) for path in files if "cuda.is_available()" in path.read_text()]


def junit_figures(path: Path) -> tuple[str, list[str]]:
    """pytest's counts from its JUnit XML, and the skip messages."""
    if not path.exists():
        return "no test report", []
    suite = ElementTree.parse(path).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    skips = [element.get("message", "") for element in suite.iter("skipped")]
    text = f"{passed} passed, {counts['failures'] + counts['errors']} failed, {counts['skipped']} skipped"
    return text, skips


def table_rows(output: str, pattern: str) -> list[tuple[str, ...]]:
    """The groups of every output line that matches ``pattern`` from its start."""
    return [match.groups() for line in output.splitlines() if (match := re.match(pattern, line))]


def scaling_figures(output: str) -> str:
    """frames/s per method at each n_envs."""
    per_method: dict[str, list[str]] = {}
    for method, n_envs, fps in table_rows(output, r"(\S+)\s+\S+\s+(\d+)\s+(\d+)\s+\S+%"):
        per_method.setdefault(method, []).append(f"{n_envs}: {int(fps):,}")
    if not per_method:
        raise ValueError("no rows")
    return "; ".join(f"{method} frames/s at {', '.join(cells)}" for method, cells in per_method.items())


def rollout_buffer_figures(output: str) -> str:
    """The sequence buffer's speed-up over sb3-contrib's at each n_envs."""
    rows = table_rows(output, r"\s*(\d+)\s+\d+\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$")
    if not rows:
        raise ValueError("no rows")
    return "sequence buffer vs sb3-contrib's, ms per update: " + "; ".join(
        f"{n} envs {sequence} vs {stock} (x{ratio})" for n, stock, sequence, ratio in rows
    )


def generated_layers_figures(output: str) -> str:
    """Forward + backward ms of the factorized and the materialized modes at each batch size."""
    rows = table_rows(output, r"\s*(\d+)\s+(factorized|materialized)\s+[\d.]+\s+([\d.]+)\s+([\d.-]+)")
    if not rows:
        raise ValueError("no rows")
    cells: dict[str, list[str]] = {}
    for batch, mode, both, _ in rows:
        cells.setdefault(batch, []).append(f"{mode} {both}")
    return "fwd+bwd ms: " + "; ".join(f"batch {batch} {', '.join(modes)}" for batch, modes in cells.items())


def parity_figures(output: str) -> str:
    """The device-parity summary line's figures."""
    summary = json.loads(output.strip().splitlines()[-1])
    return (
        f"max loss difference {summary['max_loss_relative_difference']:.2g} (relative); gradients "
        f"{summary['gradient_relative_difference']:.2g} (relative L2); parameters after the step "
        f"{summary['step_max_over_lr']:.2g} lr at most; same initial parameters: {summary['same_initial_parameters']}"
    )


def pearl_figures(output: str) -> str:
    """Gradient steps/s of each PEARL config and Hyper-PEARL's ratio to PEARL, per env."""
    rows = table_rows(output, r"\| (\S+) \| (pearl|hyper_pearl) \| ([\d.]+) \| (\d+) \|")
    if not rows:
        raise ValueError("no rows")
    return "gradient steps/s: " + "; ".join(f"{env} {config} {updates}" for env, config, updates, _ in rows)


def maml_figures(output: str) -> str:
    """Seconds per meta-iteration of each MAML config."""
    rows = table_rows(output, r"\| (maml|context_maml|hyper_maml) \| [\d.]+ \| ([\d.]+) \|")
    if not rows:
        raise ValueError("no rows")
    return "seconds per meta-iteration: " + ", ".join(f"{config} {seconds}" for config, seconds in rows)


def plan(args: argparse.Namespace, scratch: Path) -> list[Step]:
    """The steps for --device and --quick."""
    python = sys.executable
    threads = ["--threads", str(args.threads)] if args.threads else []
    device = ["--device", args.device]
    junit = scratch / "cuda_tests.xml"
    tests = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", f"--junitxml={junit}"]

    def test_figures(output: str) -> str:
        return junit_figures(junit)[0]

    def test_problem(output: str) -> str | None:
        cuda_skips = [message for message in junit_figures(junit)[1] if "cuda" in message.lower()]
        return f"{len(cuda_skips)} CUDA test(s) skipped on a CUDA machine" if cuda_skips else None

    if args.quick:
        n_envs, parity_envs, buffer_envs = ["4"], "2", ["4", "16"]
        layers = ["--batch-sizes", "16", "--repeats", "2"]
        buffer_repeats = ["--repeats", "1"]
    else:
        n_envs, parity_envs, buffer_envs = ["256", "1024", "4096"], "16", ["256", "1024", "4096"]
        layers = ["--batch-sizes", "240", "4096", "15360", "--repeats", "10"]
        buffer_repeats = ["--repeats", "3"]
    scaling = [python, "benchmarks/speed/scaling.py", "--methods", "rnn", "rnn_hn", "--n-envs", *n_envs, *device]
    if args.quick:
        pearl = ["--envs", "PointRobotTask-v0", "--updates", "2", "--repeats", "1"]
        maml = ["--meta-batch-size", "2", "--repeats", "1"]
    else:
        pearl = ["--envs", "CheetahVelTask-v0", "--updates", "10", "--repeats", "3"]
        maml = ["--meta-batch-size", "20", "--repeats", "3"]
    return [
        Step(
            "(a) CUDA tests",
            [*tests, *cuda_test_files()],
            timeout=150,
            figures=test_figures,
            skip="no CUDA with --device cpu" if args.device == "cpu" else None,
            problem=test_problem,
        ),
        Step(
            "(d) first update on the device = on the CPU (TF32 off)",
            [python, "benchmarks/probes/device_parity.py", *device, "--n-envs", parity_envs, *threads],
            timeout=120,
            figures=parity_figures,
        ),
        Step(
            "(c) rollout buffer",
            [
                python,
                "benchmarks/speed/rollout_buffer.py",
                "--n-envs",
                *buffer_envs,
                *buffer_repeats,
                *device,
                *threads,
            ],
            timeout=90,
            figures=rollout_buffer_figures,
        ),
        Step(
            "(c) generated layers",
            [python, "benchmarks/speed/generated_layers.py", *layers, *device, *threads],
            timeout=90,
            figures=generated_layers_figures,
        ),
        Step("(b) scaling, TF32 off", [*scaling, *threads], timeout=150, figures=scaling_figures),
        Step("(b) scaling, TF32 on", [*scaling, "--tf32", *threads], timeout=150, figures=scaling_figures),
        Step(
            "(e) PEARL and Hyper-PEARL",
            [python, "benchmarks/learning/pearl.py", "speed", *pearl, *device, *threads],
            timeout=150,
            figures=pearl_figures,
        ),
        Step(
            "(e) MAML, Context-MAML and Hyper-MAML",
            [python, "benchmarks/learning/maml.py", "speed", "--env", "Navigation2DTask-v0", *maml, *device, *threads],
            timeout=150,
            figures=maml_figures,
        ),
    ]


def machine(device: str) -> tuple[str, str]:
    """A line about the machine and torch, and the device's name for the file name."""
    import torch

    line = (
        f"{platform.node()}, {os.cpu_count()} CPU cores, {platform.platform()}, Python {platform.python_version()}; "
        f"torch {torch.__version__}, torch threads by default: {torch.get_num_threads()}"
    )
    name = "cpu"
    if device == "cuda":
        properties = torch.cuda.get_device_properties(0)
        name = properties.name
        line += f"; GPU {name} ({properties.total_memory / 2**30:.0f} GiB), CUDA {torch.version.cuda}"
    return line, name


def commit() -> str:
    """The checked-out commit, marked when the tree has local changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO_ROOT, capture_output=True, text=True)
    except OSError:
        return "unknown (no git)"
    if head.returncode:
        return "unknown (not a git checkout)"
    return head.stdout.strip() + (" with local changes" if dirty.stdout.strip() else "")


def shown(command: list[str]) -> str:
    """A step's command as one would type it (``python``, not this interpreter's path)."""
    return " ".join(["python" if part == sys.executable else part for part in command])


def report(args: argparse.Namespace, outcomes: list[Outcome], about: str, seconds: float) -> str:
    """The Markdown file: the machine, the table of steps, then each step's command and the end of its output."""
    verdict = "FAIL" if failed(outcomes) else "PASS"
    counts = {status: sum(outcome.status == status for outcome in outcomes) for status in (PASS, SKIPPED)}
    lines = [
        f"# GPU check: {args.device}{' (quick)' if args.quick else ''}: {verdict}",
        "",
        f"`python benchmarks/gpu_check.py {' '.join(sys.argv[1:])}`",
        "",
        f"- machine: {about}",
        f"- steps' torch threads: {args.threads or 'torch default'}; commit {commit()}",
        f"- {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; wall time {seconds:.0f} s (budget {args.budget:.0f} s); "
        f"{counts[PASS]} of {len(outcomes)} steps passed, {counts[SKIPPED]} skipped",
        "",
        "| step | status | wall s | figures |",
        "|---|---|---|---|",
    ]
    for outcome in outcomes:
        status = outcome.status + (f" ({'; '.join(outcome.notes)})" if outcome.notes else "")
        figures = outcome.figures.replace("|", "/")
        lines.append(f"| {outcome.step.name} | {status} | {outcome.seconds:.0f} | {figures} |")
    for outcome in outcomes:
        lines += ["", f"## {outcome.step.name}", "", f"`{shown(outcome.step.command)}`"]
        if outcome.output:
            kept = [line for line in outcome.output.rstrip().splitlines() if not line.startswith(BANNER)]
            tail = kept[-TAIL_LINES:]
            lines += ["", "```", *tail, "```"]
    return "\n".join(lines) + "\n"


def main() -> None:
    args = build_parser().parse_args()
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("--device cuda, but torch sees no CUDA device (use --device cpu for the dry run)")
    about, name = machine(args.device)
    out = args.out or RESULTS / f"gpu_check_{re.sub(r'[^a-z0-9]+', '_', name.lower()).strip('_')}.md"
    env = dict(os.environ, PYTHONUNBUFFERED="1")  # a killed step still shows what it printed
    if args.threads:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    began = time.perf_counter()
    outcomes = []
    with tempfile.TemporaryDirectory() as scratch:
        for step in plan(args, Path(scratch)):
            print(f"{step.name}: {shown(step.command)}", flush=True)
            outcome = run_step(step, args.budget - (time.perf_counter() - began), env)
            notes = f" ({'; '.join(outcome.notes)})" if outcome.notes else ""
            print(f"  {outcome.status}{notes} in {outcome.seconds:.0f} s. {outcome.figures}", flush=True)
            outcomes.append(outcome)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report(args, outcomes, about, time.perf_counter() - began))
    print(f"{'FAIL' if failed(outcomes) else 'PASS'}: {out}")
    if failed(outcomes):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
