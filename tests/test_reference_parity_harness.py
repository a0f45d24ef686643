"""The reference-parity harness's own plumbing (benchmarks/reference/reference_parity.py), checked without the
reference.

The comparisons themselves need a checkout of jacooba/hyper (``--reference``); here: the result lines and the
summary, the table of deliberate differences against the keys the script names, the parameter table's layout for
generated layers, the statistics over seeds of the init lines, the rollout windows of the loop lines, ``--help``, and
the error for a folder that is not a checkout.
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch as th
import torch.nn.functional as F

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "reference" / "reference_parity.py"


@pytest.fixture(scope="module")
def harness():
    spec = importlib.util.spec_from_file_location("reference_parity", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    # Its dataclasses resolve their (postponed) annotations through sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_summary_line_counts_each_status(harness):
    key = next(iter(harness.DELIBERATE))
    results = [
        harness.Result("RNN", "a", harness.EQUAL, 0.0, 1e-6),
        harness.Result("RNN", "b", harness.EQUAL, 1e-7, 1e-6),
        harness.Result("RNN", "c", harness.DELIBERATE_STATUS, 0.1, 1e-6, (key,)),
        harness.Result("RNN", "d", harness.UNEXPLAINED, 0.2, 1e-6, note="where"),
    ]
    assert harness.summary_line(results) == "parity: 2 of 4 equal, 1 deliberate, 1 unexplained"
    lines = [harness.format_result(result) for result in results]
    assert "equal (max abs diff" in lines[0]
    assert f"deliberate [{key}]" in lines[2]
    assert "UNEXPLAINED" in lines[3] and lines[3].endswith("-- where")


def test_results_only_name_keys_of_the_table(harness):
    with pytest.raises(KeyError, match="no-such-key"):
        harness.Result("RNN", "x", harness.DELIBERATE_STATUS, 1.0, 1e-6, ("no-such-key",))
    with pytest.raises(ValueError, match="must name"):
        harness.Result("RNN", "x", harness.DELIBERATE_STATUS, 1.0, 1e-6)
    for key, text in harness.DELIBERATE.items():
        assert key == key.strip().lower() and " " not in key
        assert text.strip()
        line = harness.format_result(harness.Result("RNN", "x", harness.DELIBERATE_STATUS, 1.0, 1e-6, (key,)))
        assert key in line
    assert [line.split(":")[0] for line in harness.deliberate_table()] == list(harness.DELIBERATE)


def _keys_named_in_script() -> set[str]:
    """The strings the script passes as deliberate-difference keys: the ``keys`` of Report.compare,
    compare_over_seeds and Result (by position or keyword), names ``key``/``keys`` bound to them, and the ``keys``
    column of loops over tuples."""
    tree = ast.parse(SCRIPT.read_text())
    named: set[str] = set()

    def literal_keys(node: ast.AST) -> None:
        if isinstance(node, ast.IfExp):
            literal_keys(node.body)
            literal_keys(node.orelse)
        elif isinstance(node, (ast.List, ast.Tuple)):
            named.update(e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str))

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            position = {"compare": 3, "compare_over_seeds": 4, "Result": 5}.get(name)
            if position is not None:
                if len(node.args) > position:
                    literal_keys(node.args[position])
                for keyword in node.keywords:
                    if keyword.arg == "keys":
                        literal_keys(keyword.value)
        elif isinstance(node, ast.Assign):
            if any(isinstance(t, ast.Name) and t.id in ("key", "keys") for t in node.targets):
                literal_keys(node.value)
        elif isinstance(node, ast.For) and isinstance(node.target, ast.Tuple):
            names = [getattr(t, "id", None) for t in node.target.elts]
            if "keys" in names and isinstance(node.iter, (ast.Tuple, ast.List)):
                column = names.index("keys")
                for row in node.iter.elts:
                    if isinstance(row, ast.Tuple):
                        literal_keys(row.elts[column])
    return named


def test_table_and_script_name_the_same_keys(harness):
    named = _keys_named_in_script()
    keys = set(harness.DELIBERATE)
    assert named - keys == set(), "keys named in the script but missing from DELIBERATE"
    assert keys - named == set(), "DELIBERATE entries that no comparison names (stale)"


def test_report_compare_decides_by_tolerance(harness, capsys):
    report = harness.Report()
    key = next(iter(harness.DELIBERATE))
    ref = th.ones(3)
    assert report.compare("RNN", "same", (ref + 1e-8, ref)).status == harness.EQUAL
    assert report.compare("RNN", "known", (ref + 1.0, ref), [key]).status == harness.DELIBERATE_STATUS
    odd = report.compare("RNN", "odd", [(ref, ref), (ref + 1.0, ref)], unexplained="from here")
    assert odd.status == harness.UNEXPLAINED and odd.note == "from here" and odd.diff == pytest.approx(1.0)
    assert len(capsys.readouterr().out.splitlines()) == 3
    with pytest.raises(ValueError, match="shape"):
        report.compare("RNN", "shapes", (th.ones(2), th.ones(3)))


def test_generated_layer_maps_onto_weight_and_bias_heads(harness):
    """Our A (out, in + 1, cond + 1) read as the reference's two linear heads generates the same base layer."""
    from sb3_hypernet.common.generated_layers import GeneratedLinear

    th.manual_seed(0)
    layer = GeneratedLinear(4, 3, 2, hyper_init="weight")
    with th.no_grad():
        layer.weight.add_(0.1 * th.randn_like(layer.weight))
    x, z = th.randn(5, 4), th.randn(5, 2)
    weight = F.linear(z, harness._weight_head(layer.weight), harness._weight_head_bias(layer.weight)).view(5, 3, 4)
    bias = F.linear(z, harness._bias_head(layer.weight), harness._bias_head_bias(layer.weight))
    expected = th.einsum("boi,bi->bo", weight, x) + bias
    assert th.allclose(layer(x, z), expected, atol=1e-6)


def test_help_works():
    result = _run("--help")
    assert result.returncode == 0, result.stderr
    assert "--reference" in result.stdout


def test_not_a_checkout_is_a_clear_error(tmp_path):
    result = _run("--reference", str(tmp_path))
    assert result.returncode == 2
    assert "is not a checkout of jacooba/hyper" in result.stderr
    assert "missing models/policy.py" in result.stderr


def test_a_folder_with_the_files_but_not_the_code_is_refused(tmp_path, harness):
    for name in harness.REFERENCE_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    result = _run("--reference", str(tmp_path))
    assert result.returncode == 2
    assert "hyper_final_to_actor_weight" in result.stderr


def test_statistics_over_seeds_differ_beyond_their_standard_errors(harness):
    """The init lines compare means over seeds within INIT_Z standard errors of their difference."""
    rng = np.random.default_rng(0)
    same_a, same_b = rng.normal(1.0, 0.1, 30), rng.normal(1.0, 0.1, 30)
    stat = harness.SeedStatistic.mean_of(same_a)
    assert stat.value == pytest.approx(same_a.mean())
    assert stat.error == pytest.approx(same_a.std(ddof=1) / 30**0.5)
    constant = harness.SeedStatistic.mean_of([0.0] * 30)
    assert constant == harness.SeedStatistic(0.0, 0.0)
    report = harness.Report()
    parts = [("mean", harness.SeedStatistic.mean_of(same_a), harness.SeedStatistic.mean_of(same_b))]
    assert harness.compare_over_seeds(report, "RNN", "same", parts).status == harness.EQUAL
    shifted = [("mean", harness.SeedStatistic.mean_of(same_a + 0.5), harness.SeedStatistic.mean_of(same_b))]
    odd = harness.compare_over_seeds(report, "RNN", "shifted", shifted, unexplained="from here")
    assert odd.status == harness.UNEXPLAINED and odd.note.endswith("from here")
    assert odd.diff == pytest.approx(abs((same_a + 0.5).mean() - same_b.mean()))
    key = next(iter(harness.DELIBERATE))
    assert harness.compare_over_seeds(report, "RNN", "known", shifted, keys=[key]).status == harness.DELIBERATE_STATUS
    # A constant against a constant: only float32 rounding is allowed.
    zero, tiny = harness.SeedStatistic(0.0, 0.0), harness.SeedStatistic(1e-3, 0.0)
    assert harness.compare_over_seeds(report, "RNN", "zeros", [("x", zero, zero)]).status == harness.EQUAL
    assert harness.compare_over_seeds(report, "RNN", "offset", [("x", tiny, zero)]).status == harness.UNEXPLAINED


def test_loop_window_marks_meta_episode_starts_and_the_value_after_it(harness):
    """A rollout window of the loop data: its first step starts a meta-episode where the step before ended one, and
    the value after the window is the next step's (or the data's last value past the end)."""
    steps, envs = harness.LOOP_STEPS, harness.LOOP_ENVS
    length = 2 * steps
    rewards = np.arange(length * envs, dtype=np.float32).reshape(length, envs)
    dones = np.zeros((length, envs), dtype=bool)
    dones[steps - 1 :: steps] = True
    values = -rewards
    data = harness.LoopData(rewards, dones, values, np.full(envs, 7.0, np.float32))
    offsets = np.zeros(envs, dtype=np.int64)
    offsets[1], offsets[2] = steps, 5
    window_rewards, window_values, window_dones, first, last = data.window(offsets)
    assert window_rewards.shape == window_values.shape == window_dones.shape == (steps, envs)
    assert window_rewards[0, 2] == rewards[5, 2] and window_rewards[-1, 1] == rewards[-1, 1]
    assert first[0] and first[1] and not first[2]
    assert window_dones[-1, 0] and window_dones[steps - 6, 2] and not window_dones[-1, 2]
    assert last[0] == values[steps, 0] and last[1] == 7.0 and last[2] == values[steps + 5, 2]
    with pytest.raises(ValueError, match="past the recorded"):
        data.window(np.full(envs, steps + 1))
