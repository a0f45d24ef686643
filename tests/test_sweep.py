"""Sweeps on Optuna: the grid, workers sharing a study on a real PostgreSQL server and on a journal file, a killed
worker's run re-run, each grid point completed once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import envs  # noqa: F401  (registers GridNavi-v0 for the in-process worker)
from sb3_hypernet.experiments.sweep import (
    LEARNING_RATES,
    MCLS_SEEDS,
    SEEDS,
    GridPoint,
    SweepWorker,
    completed_trials,
    make_grid,
    open_storage,
    open_study,
    point_states,
    summary_table,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "zoo_configs"
SMALL = "dict(gru_hidden_size=8, net_arch=[8], latent_embedding_dim=4, action_embedding_dim=0, reward_embedding_dim=4)"


def storage_url(kind: str, request, tmp_path: Path) -> str:
    return request.getfixturevalue("postgres_url") if kind == "postgres" else str(tmp_path / "study.log")


def start_worker(storage: str, study: str, tmp_path: Path, lrs: list[str], seeds: list[str], frames: int):
    command = [
        sys.executable, "-m", "sb3_hypernet.sweep", "--methods", "rnn", "--envs", "GridNavi-v0", "--study-name", study,
        "--storage", storage, "--learning-rates", *lrs, "--seeds", *seeds, "--frames", str(frames), "--checkpoints",
        "2", "--n-eval", "2", "-f", str(tmp_path / "runs"), "--conf-dir", str(CONFIG_DIR), "--heartbeat-interval",
        "1", "--grace-period", "4", "--poll", "0.5", "-params", "n_envs:2", f"policy_kwargs:{SMALL}",
    ]  # fmt: skip
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(process: subprocess.Popen, timeout: float = 300) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return out


def runs_done(output: str) -> int:
    return int(re.search(r"Runs completed by this worker: (\d+)", output).group(1))


def load(storage: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(storage))


def assert_each_point_once(study: optuna.Study, grid: list[GridPoint], frames: int) -> None:
    trials = point_states(study)
    assert set(trials) == set(grid)
    for point in grid:
        complete = [t for t in trials[point] if t.state == TrialState.COMPLETE]
        assert len(complete) == 1, (point, [t.state for t in trials[point]])
        (trial,) = complete
        assert trial.params == {"learning_rate": point.learning_rate, "seed": point.seed}
        curve = trial.user_attrs["curve"]
        assert [c["frames"] for c in curve] == [frames // 2, frames]
        assert trial.intermediate_values == {c["frames"]: c["meta_return"]["mean"] for c in curve}
        assert trial.value == curve[-1]["meta_return"]["mean"]
        assert len(curve[-1]["inner_returns"]) == 4 and curve[-1]["reference"]["meta_return"] == pytest.approx(
            37.2, 0.01
        )
        run_dir = point.run_dir(Path(trial.user_attrs["run_dir"]).parents[2])
        assert Path(trial.user_attrs["run_dir"]) == run_dir
        assert (run_dir / "GridNavi-v0.zip").exists() and (run_dir / "GridNavi-v0" / "vecnormalize.pkl").exists()
        assert any((run_dir / "tb").rglob("events.out.tfevents*"))


def test_grid_is_the_papers_protocol():
    grid = make_grid(["rnn", "rnn_hn"], ["GridNavi-v0", "MCLS-v0"])
    assert len(grid) == 2 * 5 * (3 + 4)
    assert {p.learning_rate for p in grid} == set(LEARNING_RATES) == {3e-3, 1e-3, 3e-4, 1e-4, 3e-5}
    assert {p.seed for p in grid if p.env == "GridNavi-v0"} == set(SEEDS) == {73, 20, 3}
    assert {p.seed for p in grid if p.env == "MCLS-v0"} == set(MCLS_SEEDS)
    assert len(make_grid(["rnn"], ["GridNavi-v0"], [1e-3], [0, 1])) == 2
    point = GridPoint("rnn_hn", "GridNavi-v0", 3e-4, 73)
    assert point.run_dir("logs") == Path("logs/rnn_hn/GridNavi-v0/lr0.0003_seed73")
    assert GridPoint.from_dict({"method": "rnn_hn", "env": "GridNavi-v0", "learning_rate": "3e-4", "seed": 73}) == point
    with pytest.raises(ValueError, match="learning rates must lie in"):
        make_grid(["rnn"], ["GridNavi-v0"], [0.0])
    with pytest.raises(ValueError, match="at least one method"):
        make_grid([], ["GridNavi-v0"])


def test_study_enqueues_each_point_once_and_grows(tmp_path):
    storage = open_storage(str(tmp_path / "s.log"))
    grid = make_grid(["rnn"], ["GridNavi-v0"], [1e-3], [0, 1])
    study = open_study(storage, "grow", grid)
    study = open_study(storage, "grow", grid)  # a second command: nothing new
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 2
    bigger = make_grid(["rnn", "rnn_hn"], ["GridNavi-v0"], [1e-3], [0, 1])
    study = open_study(storage, "grow", bigger)
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 4
    assert set(point_states(study)) == set(bigger)


def test_worker_rejects_bad_settings(tmp_path):
    study = open_study(open_storage(str(tmp_path / "s.log")), "bad", [])
    with pytest.raises(ValueError, match="no zoo config 'nope'"):
        SweepWorker(study, make_grid(["nope"], ["GridNavi-v0"]), config_dir=CONFIG_DIR)
    with pytest.raises(ValueError, match="has no entry for 'CartPole-v1'"):
        SweepWorker(study, make_grid(["rnn"], ["CartPole-v1"]), config_dir=CONFIG_DIR)
    with pytest.raises(ValueError, match="learning_rate: set by the sweep itself"):
        SweepWorker(study, make_grid(["rnn"], ["GridNavi-v0"]), config_dir=CONFIG_DIR, hyperparams={"learning_rate": 1})


def test_a_point_enqueued_twice_runs_once(tmp_path):
    # Two workers starting together on a new study may both enqueue the grid; the later trial of a point yields.
    storage = open_storage(str(tmp_path / "s.log"))
    grid = make_grid(["rnn"], ["GridNavi-v0"], [1e-3], [0])
    study = open_study(storage, "twice", grid)
    study.enqueue_trial(grid[0].params(), user_attrs={"grid_point": {**grid[0].__dict__}})
    small = "dict(gru_hidden_size=8, net_arch=[8], latent_embedding_dim=4, action_embedding_dim=0)"
    worker = SweepWorker(study, grid, config_dir=CONFIG_DIR, log_folder=tmp_path / "runs", frames=120, n_checkpoints=1,
                         n_eval=2, hyperparams={"n_envs": 2, "policy_kwargs": small}, verbose=0)  # fmt: skip
    assert worker.run() == 1
    states = sorted(t.state.name for t in study.trials)
    assert states == ["COMPLETE", "PRUNED"]
    (skipped,) = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert skipped.user_attrs["skipped"] == "duplicate" and skipped.number == 1


def test_a_run_says_the_frames_it_really_trains_and_saves_for_evaluation(tmp_path, capsys):
    # 200 frames with 2 envs x 60 steps: SB3 trains whole rollouts, 240 frames; the line says so where it starts.
    storage = open_storage(str(tmp_path / "s.log"))
    grid = make_grid(["rnn"], ["GridNavi-v0"], [1e-3], [0])
    study = open_study(storage, "rounding", grid)
    small = "dict(gru_hidden_size=8, net_arch=[8], latent_embedding_dim=4, action_embedding_dim=0)"
    worker = SweepWorker(study, grid, config_dir=CONFIG_DIR, log_folder=tmp_path / "runs", frames=200, n_checkpoints=1,
                         n_eval=2, hyperparams={"n_envs": 2, "policy_kwargs": small})  # fmt: skip
    assert worker.run() == 1
    out = capsys.readouterr().out
    assert "240 frames (200 asked; SB3 trains whole rollouts of 120)" in out
    assert re.search(r"done: .*after 240 frames", out)
    (trial,) = study.trials
    assert (trial.user_attrs["frames"], trial.user_attrs["frames_trained"]) == (200, 240)
    from sb3_hypernet import MetaRecurrentPPO

    saved = MetaRecurrentPPO.load(Path(trial.user_attrs["run_dir"]) / "GridNavi-v0.zip")
    assert saved.optimizer_state_missing  # the sweep's zips are for evaluation unless --save-optimizer-state


def test_a_worker_hands_back_points_of_another_grid(tmp_path):
    # Two commands with different grids share a study; a worker must not retire the other grid's points.
    storage = open_storage(str(tmp_path / "s.log"))
    theirs = make_grid(["rnn_s"], ["GridNavi-v0"], [1e-3], [0])
    mine = make_grid(["rnn"], ["GridNavi-v0"], [1e-3], [0])
    open_study(storage, "mixed", theirs)
    study = open_study(storage, "mixed", mine)  # their point waits first in the queue
    small = "dict(gru_hidden_size=8, net_arch=[8], latent_embedding_dim=4, action_embedding_dim=0)"
    worker = SweepWorker(study, mine, config_dir=CONFIG_DIR, log_folder=tmp_path / "runs", frames=120, n_checkpoints=1,
                         n_eval=2, hyperparams={"n_envs": 2, "policy_kwargs": small}, verbose=0)  # fmt: skip
    assert worker.run() == 1
    states = point_states(study)
    assert [t.state for t in states[mine[0]]] == [TrialState.COMPLETE]
    assert [t.state for t in states[theirs[0]]] == [TrialState.PRUNED, TrialState.WAITING]  # still there to run


@pytest.mark.parametrize("kind", ["postgres", "journal"])
def test_two_workers_share_a_study_and_run_each_point_once(kind, request, tmp_path):
    # Runs of about a second each: with tinier ones, a worker that imports faster could take the whole grid.
    storage, name, frames = storage_url(kind, request, tmp_path), f"share_{kind}", 2400
    lrs, seeds = ["1e-3", "3e-4", "1e-4"], ["0", "1"]
    workers = [start_worker(storage, name, tmp_path, lrs, seeds, frames) for _ in range(2)]
    outputs = [finish(worker) for worker in workers]
    counts = [runs_done(output) for output in outputs]
    assert sum(counts) == 6 and min(counts) > 0, counts  # both worked, nothing was run twice
    grid = make_grid(["rnn"], ["GridNavi-v0"], [float(x) for x in lrs], [int(x) for x in seeds])
    study = load(storage, name)
    assert_each_point_once(study, grid, frames)
    trained = [t for t in study.trials if "run_dir" in t.user_attrs]
    assert len(trained) == 6  # no trial trained a point another one trained
    assert "| rnn | GridNavi-v0 | 0.001 | 2 |" in summary_table(study)
    # Re-running the command finds nothing to do.
    again = finish(start_worker(storage, name, tmp_path, lrs, seeds, frames))
    assert runs_done(again) == 0 and len(load(storage, name).trials) == len(study.trials)


@pytest.mark.parametrize("kind", ["postgres", "journal"])
def test_a_killed_workers_run_is_rerun_by_the_next_worker(kind, request, tmp_path):
    storage, name, frames = storage_url(kind, request, tmp_path), f"kill_{kind}", 2400
    lrs, seeds = ["1e-3"], ["0", "1"]
    first = start_worker(storage, name, tmp_path, lrs, seeds, frames)
    deadline = time.time() + 120
    killed = None
    while time.time() < deadline and killed is None and first.poll() is None:
        time.sleep(0.1)
        try:
            running = load(storage, name).get_trials(states=(TrialState.RUNNING,))
        except KeyError:  # the study is not created yet
            continue
        started = [t.number for t in running if t.user_attrs.get("curve") == [] and "run_dir" in t.user_attrs]
        if not started:
            continue
        # A fast machine may finish a tiny run between the poll and the kill: freeze the worker, and kill it only if
        # the run is still unfinished in the storage, so the kill is always mid-run.
        first.send_signal(signal.SIGSTOP)
        if load(storage, name).trials[started[0]].state == TrialState.RUNNING:
            first.send_signal(signal.SIGKILL)
            first.wait()
            killed = started[0]
        else:
            first.send_signal(signal.SIGCONT)
    assert killed is not None, "the first worker never was caught mid-run"
    # The first worker may have finished the other point before it was caught.
    done_before = len(load(storage, name).get_trials(states=(TrialState.COMPLETE,)))
    second = finish(start_worker(storage, name, tmp_path, lrs, seeds, frames))
    assert runs_done(second) == 2 - done_before
    study = load(storage, name)
    grid = make_grid(["rnn"], ["GridNavi-v0"], [1e-3], [0, 1])
    assert_each_point_once(study, grid, frames)
    assert study.trials[killed].state == TrialState.FAIL
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert len(completed_trials(study)) == 2
