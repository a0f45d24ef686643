"""benchmarks/ as a suite: every script a module with its parser in build_parser() and its work behind a __main__
guard, runnable as a file and as a module; the shared result-file helpers; and benchmarks/gpu_check.py's dry run on
the CPU, so that the check a GPU machine runs first cannot rot where no GPU is."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO_ROOT / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.rglob("*.py") if p.name not in ("__init__.py", "common.py"))
sys.path.insert(0, str(REPO_ROOT))  # `benchmarks` as a package, as the scripts import it
from benchmarks import common  # noqa: E402
from benchmarks.gpu_check import FAIL, NOT_RUN, PASS, SKIPPED, TIMEOUT, Outcome, Step, failed, run_step  # noqa: E402


def _name(script: Path) -> str:
    return str(script.relative_to(REPO_ROOT))


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)


def test_the_suite_has_its_folders():
    kinds = {script.parent.name for script in SCRIPTS}
    assert {"speed", "learning", "probes", "reports", "reference"} <= kinds
    assert not list(BENCHMARKS.glob("runs.py")), "runs.py became benchmarks/common.py"
    for folder in ("speed", "learning", "probes", "reports", "reference"):
        assert (BENCHMARKS / folder / "__init__.py").exists()


@pytest.mark.parametrize("script", SCRIPTS, ids=_name)
def test_script_has_a_parser_function_and_a_main_guard(script):
    tree = ast.parse(script.read_text())
    functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert {"build_parser", "main"} <= functions
    guards = [
        node
        for node in tree.body
        if isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
        and isinstance(node.test.comparators[0], ast.Constant)
        and node.test.comparators[0].value == "__main__"
    ]
    assert len(guards) == 1, "one `if __name__ == '__main__':` at module level"
    (call,) = guards[0].body
    assert isinstance(call, ast.Expr) and isinstance(call.value, ast.Call) and call.value.func.id == "main"
    # Nothing but definitions, imports, constants and the sys.path line at module level: importing runs no work.
    allowed = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign, ast.If)
    for node in tree.body:
        if isinstance(node, ast.Expr):
            is_docstring = isinstance(node.value, ast.Constant)
            is_path_line = ast.unparse(node).startswith("sys.path.insert(0, str(Path(__file__).resolve().parents[")
            assert is_docstring or is_path_line, ast.unparse(node)
        else:
            assert isinstance(node, allowed), ast.unparse(node)[:80]


def test_every_script_imports_and_builds_its_parser():
    # In this process: one import of torch and the library for all of them (a process per script is ~3 s each).
    for script in SCRIPTS:
        name = "benchmark_" + "_".join(script.relative_to(BENCHMARKS).with_suffix("").parts)
        spec = importlib.util.spec_from_file_location(name, script)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses resolve postponed annotations through sys.modules
        try:
            spec.loader.exec_module(module)
            usage = module.build_parser().format_help()
        finally:
            sys.modules.pop(name, None)
        assert usage.startswith("usage:"), _name(script)


@pytest.mark.parametrize(
    "script",
    ["reports/mcls_memory_table.py", "reference/reference_run.py", "reference/reference_worker.py", "gpu_check.py"],
)
def test_help_runs_as_a_file_and_as_a_module(script):
    # Scripts whose heavy imports wait for their arguments, so that --help costs a fraction of a second.
    module = "benchmarks." + script.removesuffix(".py").replace("/", ".")
    for command in (["benchmarks/" + script, "--help"], ["-m", module, "--help"]):
        result = _run(*command)
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.startswith("usage:")


def test_scripts_spawned_by_path_exist():
    assert common.LEARNING_SCRIPT.exists()
    run = (BENCHMARKS / "reference" / "reference_run.py").read_text()
    assert 'with_name("reference_worker.py")' in run and (BENCHMARKS / "reference" / "reference_worker.py").exists()


def test_result_records_round_trip(tmp_path):
    out = tmp_path / "new" / "results.jsonl"
    common.append_record(out, {"method": "rnn_hn", "frames": 100, "meta_return": {"mean": 1.5}})
    with open(out, "a") as file:
        file.write("\n")  # a blank line, as an interrupted writer may leave
    common.append_record(out, {"method": "rnn_hn", "frames": 200, "diverged": True})
    common.append_record(out, {"method": "rnn", "frames": 300})
    assert [r["frames"] for r in common.read_records(out)] == [100, 200, 300]
    assert [r["frames"] for r in common.final_records(out, 250)] == [200, 300]


def test_threads_option_defaults_to_torchs_choice():
    parser = common.new_parser("First paragraph.\n\nSecond.")
    common.add_threads_option(parser)
    assert parser.description == "First paragraph."
    assert parser.parse_args([]).threads is None and parser.parse_args(["--threads", "2"]).threads == 2


def test_gpu_check_steps_fail_time_out_and_skip_on_their_own():
    python = sys.executable
    ok = run_step(Step("ok", [python, "-c", "print('rows')"], timeout=30, figures=lambda output: output.strip()), 60)
    assert (ok.status, ok.figures) == (PASS, "rows")
    bad = run_step(Step("bad", [python, "-c", "raise SystemExit(3)"], timeout=30), 60)
    assert bad.status == FAIL and bad.notes == ["exit status 3"]
    # A hang is killed at its timeout, with what it printed so far.
    hang = run_step(Step("hang", [python, "-c", "print('started', flush=True); import time; time.sleep(60)"], 6), 60)
    assert hang.status == TIMEOUT and "started" in hang.output and hang.seconds < 30
    assert run_step(Step("late", [python, "-c", ""], timeout=30), seconds_left=2).status == NOT_RUN
    assert run_step(Step("cuda", [python, "-c", ""], timeout=30, skip="no CUDA"), 60).status == SKIPPED
    problem = run_step(Step("quiet", [python, "-c", ""], timeout=30, problem=lambda output: "CUDA skipped"), 60)
    assert problem.status == FAIL and problem.notes == ["CUDA skipped"]
    skipped = Outcome(Step("cuda", [], timeout=0), SKIPPED)
    assert not failed([ok, skipped]) and failed([ok, skipped, hang]) and failed([bad]) and failed([problem])


def test_gpu_check_dry_run_on_the_cpu(tmp_path):
    """The GPU check's every step at tiny sizes on the CPU: about 35 s on two busy cores."""
    out = tmp_path / "gpu_check_cpu.md"
    result = _run(
        "benchmarks/gpu_check.py", "--device", "cpu", "--quick", "--threads", "1", "--out", str(out), timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    text = out.read_text()
    assert text.startswith("# GPU check: cpu (quick): PASS")
    rows = [line for line in text.splitlines() if line.startswith("| (")]
    assert len(rows) == 8
    statuses = {row.split(" | ")[0].lstrip("| "): row.split(" | ")[1] for row in rows}
    assert statuses.pop("(a) CUDA tests").startswith(SKIPPED)
    assert set(statuses.values()) == {PASS}, statuses
    assert "rnn_hn frames/s at 4" in text and "max loss difference 0" in text and "batch 16 factorized" in text
    assert "PointRobotTask-v0 hyper_pearl" in text and "hyper_maml" in text


def test_the_comparison_report_states_the_orderings_and_compares_like_for_like(tmp_path):
    import json

    def record(method, seed, frames, value):
        return {"method": method, "seed": seed, "frames": frames, "env": "GridNavi-v0",
                "meta_return": {"mean": value}, "inner_returns": [{"mean": value / 2}] * 2}  # fmt: skip

    out, earlier = tmp_path / "now.jsonl", tmp_path / "earlier.jsonl"
    now = [record("rnn_hn", s, f, v) for s in (1, 2) for f, v in ((500160, 20.0 + s), (1000320, 30.0 + s))]
    now += [record("ti", s, 1000320, 10.0 + s) for s in (1, 2)] + [record("rnn", s, 1000320, 9.0) for s in (1, 2)]
    now += [record("rnn_s", s, 1000320, 5.0 + 10 * s) for s in (1, 2)]  # 15, 25 against RNN's 9, 9
    out.write_text("".join(json.dumps(r) + "\n" for r in now))
    earlier.write_text(json.dumps(record("rnn_hn", 1, 500160, 12.0)) + "\n")
    table = tmp_path / "table.md"
    script = "benchmarks/learning/task_inference_comparison.py"
    run = _run(script, "--report-only", "--frames", "1e6", "--out", str(out), "--previous", str(earlier),
               "--methods", "rnn", "rnn_s", "rnn_hn", "ti", "--table", str(table))  # fmt: skip
    assert run.returncode == 0, run.stderr
    text = table.read_text()
    assert "| RNN+HN | 31.50 |" in text and "| 12.00 (500160 frames, 1 seeds) | 21.50 (2 seeds) |" in text
    assert "- RNN+HN first: holds (RNN+HN 31.50, best of the others RNN+S 20.00; 68% CIs apart)" in text
    assert "- TI++HN above every other task-inference method: not measured here" in text
    assert "- RNN+S >= RNN: holds (RNN+S 20.00, best of the others RNN 9.00; 68% CIs apart)" in text


def test_maml_learning_resumes_and_reports_its_tables_and_policy_std(tmp_path):
    """maml.py learning at tiny sizes to two checkpoints (the second resumed from the first's save), then its table
    and the action std of each saved checkpoint."""
    out, root = tmp_path / "maml.jsonl", tmp_path / "models"
    settings = ["--env", "Navigation2DTask-v0", "--configs", "maml", "--seeds", "0", "--out", str(out),
                "--save-root", str(root), "--hyperparams", "n_envs:2", "meta_batch_size:2", "n_train_tasks:3",
                "n_test_tasks:2"]  # fmt: skip
    first = _run("benchmarks/learning/maml.py", "learning", "--checkpoints", "400", *settings, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    second = _run("benchmarks/learning/maml.py", "learning", "--checkpoints", "400", "1600", *settings, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resumed at" in second.stdout
    table = _run("benchmarks/learning/maml.py", "table", "--out", str(out)).stdout
    assert "| Navigation2DTask-v0 | maml | 400 | 1 |" in table and "| Navigation2DTask-v0 | maml | 1600 | 1 |" in table
    stds = _run("benchmarks/learning/maml.py", "policy-std", "--save-root", str(root), timeout=120).stdout
    rows = [line for line in stds.splitlines() if line.startswith("| Navigation2DTask-v0 | maml | 0 |")]
    assert len(rows) == 2, stds
    from sb3_hypernet.maml import MAML

    last = max(root.glob("maml/Navigation2DTask-v0/seed0/*.zip"), key=lambda path: int(path.stem))
    expected = MAML.load(last, device="cpu").policy.log_std.detach().exp().tolist()
    values = [float(v) for v in rows[-1].split(" | ")[-1].rstrip(" |").split(", ")]
    assert values == pytest.approx(expected, abs=5e-4) and values != [1.0, 1.0]
    empty = _run("benchmarks/learning/maml.py", "policy-std", "--save-root", str(tmp_path / "none")).stdout
    assert empty.startswith("no checkpoints under")
