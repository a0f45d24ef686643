"""The papers' protocol as an Optuna study: the grid of (method, environment, learning rate, seed) points, storages
(a journal file or a shared PostgreSQL), the worker that trains and evaluates points at checkpoints, and the summary
table. The command line is :mod:`sb3_hypernet.sweep`."""

from __future__ import annotations

import math
import os
import threading
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
import torch as th
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, Trial, TrialState
from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_hypernet.common.callbacks import CheckpointEvaluation
from sb3_hypernet.experiments import configs
from sb3_hypernet.experiments.zoo import build_model, load_hyperparams

#: The papers' learning rates (NeurIPS 2023 appendix 8.2).
LEARNING_RATES = (3e-3, 1e-3, 3e-4, 1e-4, 3e-5)
#: The reference implementation's seeds: three per run, four on MC-LS (NeurIPS 2023 section 4).
SEEDS = (73, 20, 3)
MCLS_SEEDS = (73, 20, 3, 99)
#: Range of the learning-rate parameter (wide: the trials' values are fixed by the grid).
LEARNING_RATE_RANGE = (1e-8, 1.0)
#: The algorithm every sweep run trains with (rl_zoo3 name).
ALGO = "meta_ppo_lstm"
POINT_KEY = "grid_point"
HEARTBEAT_KEY = "sweep:heartbeat"


@dataclass(frozen=True)
class GridPoint:
    """One run of a sweep."""

    method: str
    env: str
    learning_rate: float
    seed: int

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GridPoint:
        return cls(str(values["method"]), str(values["env"]), float(values["learning_rate"]), int(values["seed"]))

    def params(self) -> dict[str, float | int]:
        """The Optuna parameters of the point's trial."""
        return {"learning_rate": self.learning_rate, "seed": self.seed}

    def run_dir(self, root: str | os.PathLike) -> Path:
        """Where the run's model and logs go."""
        return Path(root) / self.method / self.env / f"lr{self.learning_rate:g}_seed{self.seed}"

    def __str__(self) -> str:
        return f"{self.method} on {self.env}, lr {self.learning_rate:g}, seed {self.seed}"


def default_seeds(env_id: str) -> tuple[int, ...]:
    """Three reference seeds, four on MC-LS (NeurIPS 2023 section 4)."""
    return MCLS_SEEDS if env_id.startswith("MCLS") else SEEDS


def make_grid(
    methods: Sequence[str],
    envs: Sequence[str],
    learning_rates: Sequence[float] = LEARNING_RATES,
    seeds: Sequence[int] | None = None,
) -> list[GridPoint]:
    """Every (method, env, learning rate, seed); ``seeds=None``: :func:`default_seeds` per env."""
    if not methods or not envs or not learning_rates or (seeds is not None and not seeds):
        raise ValueError("a sweep needs at least one method, env, learning rate and seed")
    low, high = LEARNING_RATE_RANGE
    if any(not low <= lr <= high for lr in learning_rates):
        raise ValueError(f"learning rates must lie in [{low:g}, {high:g}], got {list(learning_rates)}")
    if seeds is not None and any(not 0 <= seed < 2**31 for seed in seeds):
        raise ValueError(f"seeds must lie in [0, 2**31), got {list(seeds)}")
    return [
        GridPoint(method, env, float(lr), int(seed))
        for method in methods
        for env in envs
        for lr in learning_rates
        for seed in (seeds if seeds is not None else default_seeds(env))
    ]


def _retry(max_retry: int) -> RetryHeartbeatStaleTrialCallback:
    """Optuna's re-enqueueing of dead runs (experimental in Optuna 5; its warning says so on every worker)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RetryHeartbeatStaleTrialCallback(max_retry=max_retry)


def open_storage(
    url: str, heartbeat_interval: int = 60, grace_period: int | None = None, max_retry: int = 3
) -> BaseStorage:
    """A journal file for a path (``.log``, the default), an RDB storage with Optuna's heartbeat and failed-trial
    retry for a URL (``postgresql://...``, ``sqlite:///...``)."""
    if "://" not in url:
        Path(url).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(url))
    import sqlalchemy.exc

    def connect() -> RDBStorage:
        with warnings.catch_warnings():  # the heartbeat arguments are experimental in Optuna 5
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                url,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=_retry(max_retry),
            )

    for attempt in range(4):
        try:
            return connect()
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            # Workers started together on an empty database race to create Optuna's tables; the loser retries
            # and finds them.
            time.sleep(0.5 * (attempt + 1))
    return connect()


def open_study(storage: BaseStorage, study_name: str, grid: Iterable[GridPoint]) -> optuna.Study:
    """Create or load the study and enqueue the grid points it does not hold yet (resuming and growing a sweep)."""
    try:
        study = optuna.create_study(storage=storage, study_name=study_name, direction="maximize")
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(storage=storage, study_name=study_name)
    held = {
        GridPoint.from_dict(t.user_attrs[POINT_KEY])
        for t in study.get_trials(deepcopy=False)
        if POINT_KEY in t.user_attrs
    }
    for point in grid:
        if point not in held:
            study.enqueue_trial(point.params(), user_attrs={POINT_KEY: asdict(point)})
    return study


def point_states(study: optuna.Study) -> dict[GridPoint, list[FrozenTrial]]:
    """The trials of each grid point, in trial order."""
    out: dict[GridPoint, list[FrozenTrial]] = {}
    for trial in study.get_trials(deepcopy=False):
        if POINT_KEY in trial.user_attrs:
            out.setdefault(GridPoint.from_dict(trial.user_attrs[POINT_KEY]), []).append(trial)
    return out


def completed_trials(study: optuna.Study) -> dict[GridPoint, FrozenTrial]:
    """The completed run of each grid point that has one."""
    done = {}
    for point, trials in point_states(study).items():
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        if complete:
            done[point] = complete[0]
    return done


class SweepWorker:
    """Runs grid points of a study until none is left to run (see the module docstring).

    :param study: the sweep's study (:func:`open_study`)
    :param grid: the points this worker may run (others in the study are left to their own commands)
    :param config_dir: folder of the zoo configs (``<method>.yml``); default: the package's
        (:func:`~sb3_hypernet.experiments.configs.config_dir`)
    :param log_folder: root of the run folders
    :param frames: training frames per run (default: the zoo entry's ``n_timesteps``)
    :param n_checkpoints: evaluations per run, at evenly spaced frame counts
    :param n_eval: meta-episodes per evaluation (fresh tasks, deterministic actions)
    :param eval_seed: seed of the evaluation tasks
    :param vec_env: ``dummy`` or ``array`` (the array-stepped VecEnv)
    :param hyperparams: entries replacing the zoo entry's, for every run (as zoo's ``-params``)
    :param heartbeat_interval: seconds between heartbeats of a run on a journal file (RDB: the storage's own)
    :param grace_period: seconds without heartbeat after which a run counts as dead (journal file)
    :param max_retry: re-runs of a dead run (journal file; RDB: the storage's callback)
    :param poll: seconds between looks at the study while other workers hold the remaining runs
    :param progress_bar: SB3's progress bar during each run
    :param save_optimizer_state: save each run's model with its optimisers' states (to train it on later); by
        default the zips are for evaluation, a third of the size
    :param verbose: 0 silent, 1 one line per run and checkpoint
    """

    def __init__(
        self,
        study: optuna.Study,
        grid: Sequence[GridPoint],
        config_dir: str | os.PathLike | None = None,
        log_folder: str | os.PathLike = "logs/sweeps",
        frames: int | None = None,
        n_checkpoints: int = 10,
        n_eval: int = 100,
        eval_seed: int = 10_000,
        vec_env: str = "dummy",
        hyperparams: dict[str, Any] | None = None,
        heartbeat_interval: float = 60.0,
        grace_period: float | None = None,
        max_retry: int = 3,
        poll: float = 5.0,
        progress_bar: bool = False,
        verbose: int = 1,
        save_optimizer_state: bool = False,
    ):
        if n_checkpoints < 1 or n_eval < 1:
            raise ValueError(f"n_checkpoints and n_eval must be >= 1, got {n_checkpoints} and {n_eval}")
        if frames is not None and frames < 1:
            raise ValueError(f"frames must be >= 1 (None: the zoo entry's n_timesteps), got {frames}")
        self.study = study
        self.grid = list(grid)
        self.config_dir = Path(config_dir) if config_dir is not None else configs.config_dir()
        self.config_files = {
            method: configs.zoo_config(method, self.config_dir) for method in {point.method for point in self.grid}
        }
        for point in self.grid:
            load_hyperparams(self.config_files[point.method], point.env, ALGO)  # names a missing entry
        self.log_folder = Path(log_folder) / study.study_name
        self.frames = frames
        self.n_checkpoints = n_checkpoints
        self.n_eval = n_eval
        self.eval_seed = eval_seed
        self.vec_env = vec_env
        self.hyperparams = dict(hyperparams or {})
        forbidden = {"learning_rate", "seed", "n_timesteps"} & set(self.hyperparams)
        if forbidden:
            raise ValueError(
                f"{', '.join(sorted(forbidden))}: set by the sweep itself (--learning-rates, --seeds, --frames)"
            )
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period if grace_period is not None else 2 * heartbeat_interval
        self.retry = _retry(max_retry)
        self.poll = poll
        self.progress_bar = progress_bar
        self.save_optimizer_state = save_optimizer_state
        self.verbose = verbose
        self.runs_done = 0

    @property
    def _own_heartbeat(self) -> bool:
        """Whether this worker keeps the heartbeat itself (a journal file; RDB storages have Optuna's)."""
        return not isinstance(self.study._storage, RDBStorage)

    def run(self) -> int:
        """Run grid points until every one is complete or has used up its retries; returns runs completed here."""
        mine = set(self.grid)
        while True:
            self._fail_dead_runs()
            trials = point_states(self.study)
            pending = [p for p in mine if not any(t.state == TrialState.COMPLETE for t in trials.get(p, []))]
            live = [
                p
                for p in pending
                if any(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in trials.get(p, []))
            ]
            # Waiting trials of complete points are duplicates: popping them lets the objective retire them.
            if any(t.state == TrialState.WAITING for p in mine for t in trials.get(p, [])):
                self.study.optimize(self._objective, n_trials=1, gc_after_trial=True)
                continue
            if not live:
                for point in pending:
                    self._say(f"gave up on {point}: every try failed")
                break
            time.sleep(self.poll)  # the rest is running elsewhere; a dead run comes back after its grace period
        return self.runs_done

    def _fail_dead_runs(self) -> None:
        """Fail runs whose heartbeat stopped and re-enqueue them (Optuna's own on RDB storages)."""
        if not self._own_heartbeat:
            fail_stale_trials(self.study)
            return
        storage, now = self.study._storage, time.time()
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            # A retried trial inherits its dead predecessor's system attributes: its own start counts too.
            started = trial.datetime_start.timestamp() if trial.datetime_start else now
            last = max(trial.system_attrs.get(HEARTBEAT_KEY, started), started)
            if now - last <= self.grace_period:
                continue
            try:
                if not storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                    continue
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another worker failed it first
            self._say(f"trial {trial.number} ({GridPoint.from_dict(trial.user_attrs[POINT_KEY])}) died; re-enqueued")
            self.retry(self.study, storage.get_trial(trial._trial_id))

    def _is_duplicate(self, trial: Trial, point: GridPoint) -> bool:
        """Another trial of the point completed, or an earlier one is waiting or running."""
        for other in point_states(self.study).get(point, []):
            if other.number == trial.number:
                continue
            if other.state == TrialState.COMPLETE:
                return True
            if other.number < trial.number and other.state in (TrialState.WAITING, TrialState.RUNNING):
                return True
        return False

    def _objective(self, trial: Trial) -> float:
        values = trial.user_attrs.get(POINT_KEY)
        if values is None:  # no waiting point was left when this worker asked: not a run
            raise optuna.TrialPruned("no grid point")
        point = GridPoint.from_dict(values)
        if point not in set(self.grid):
            # Another command's grid point (Optuna hands out the oldest waiting trial): put it back for its workers.
            self.study.enqueue_trial(point.params(), user_attrs={POINT_KEY: asdict(point)})
            trial.set_user_attr("skipped", "handed back")
            raise optuna.TrialPruned(f"{point}: not in this worker's grid")
        if self._is_duplicate(trial, point):
            trial.set_user_attr("skipped", "duplicate")
            raise optuna.TrialPruned(f"{point}: run by another trial")
        # The numeric coordinates as Optuna parameters (plots, importances); method and env are user attributes,
        # since a categorical parameter cannot gain choices when a later command grows the grid.
        trial.suggest_float("learning_rate", *LEARNING_RATE_RANGE, log=True)
        trial.suggest_int("seed", 0, 2**31 - 1)
        stop = threading.Event()
        if self._own_heartbeat:
            threading.Thread(target=self._beat, args=(trial, stop), daemon=True).start()
        try:
            return self._train(trial, point)
        finally:
            stop.set()

    def _beat(self, trial: Trial, stop: threading.Event) -> None:
        storage = self.study._storage
        while True:
            try:
                storage.set_trial_system_attr(trial._trial_id, HEARTBEAT_KEY, time.time())
            except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
                return  # the trial finished (or was failed by another worker)
            if stop.wait(self.heartbeat_interval):
                return

    def _train(self, trial: Trial, point: GridPoint) -> float:
        conf = self.config_files[point.method]
        entry = {**load_hyperparams(conf, point.env, ALGO), **self.hyperparams}
        frames = int(self.frames or entry["n_timesteps"])
        scheduled = isinstance(entry.get("learning_rate"), str) and entry["learning_rate"].startswith("lin_")
        run_dir = point.run_dir(self.log_folder)
        run_dir.mkdir(parents=True, exist_ok=True)
        model, callbacks = build_model(
            conf,
            point.env,
            seed=point.seed,
            algo=ALGO,
            tensorboard_log=str(run_dir / "tb"),
            vec_env_type=self.vec_env,
            **self.hyperparams,
            n_timesteps=frames,
            learning_rate=f"lin_{point.learning_rate:g}" if scheduled else point.learning_rate,
        )
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("frames", frames)
        trial.set_user_attr("host", os.uname().nodename)
        trial.set_user_attr("curve", [])  # a retried trial inherits the dead run's
        curve: list[dict[str, Any]] = []

        def on_checkpoint(model: BaseAlgorithm, summary: dict[str, Any], fps: float) -> None:
            mean = summary["meta_return"]["mean"]
            curve.append({"frames": model.num_timesteps, "fps": fps, **summary})
            trial.report(mean, step=model.num_timesteps)
            trial.set_user_attr("curve", curve)
            self._say(f"  trial {trial.number}: {model.num_timesteps} frames, meta-episode return {mean:.2f}")

        checkpoints = [round(frames * (i + 1) / self.n_checkpoints) for i in range(self.n_checkpoints)]
        evaluation = CheckpointEvaluation(
            point.env, checkpoints, on_checkpoint, self.n_eval, self.eval_seed, entry.get("env_kwargs")
        )
        rollout = model.n_steps * model.n_envs
        trained = math.ceil(frames / rollout) * rollout
        rounding = "" if trained == frames else f" ({frames} asked; SB3 trains whole rollouts of {rollout})"
        self._say(f"trial {trial.number}: {point}, {trained} frames{rounding} -> {run_dir}")
        began = time.perf_counter()
        try:
            model.learn(frames, callback=[*callbacks, evaluation], progress_bar=self.progress_bar, tb_log_name="run")
        except ValueError:  # NaN parameters surface as invalid distribution parameters
            if all(bool(th.isfinite(p).all()) for p in model.policy.parameters()) or not curve:
                raise
            trial.set_user_attr("diverged", model.num_timesteps)
            self._say(f"trial {trial.number}: diverged at {model.num_timesteps} frames; value from the last checkpoint")
        model.save(run_dir / f"{point.env}.zip", optimizer_state=self.save_optimizer_state)
        vec_normalize = model.get_vec_normalize_env()
        if vec_normalize is not None:
            (run_dir / point.env).mkdir(exist_ok=True)
            vec_normalize.save(str(run_dir / point.env / "vecnormalize.pkl"))
        model.get_env().close()
        value = curve[-1]["meta_return"]["mean"]
        trial.set_user_attr("frames_trained", model.num_timesteps)
        self._say(
            f"trial {trial.number} done: {point}: {value:.2f} after {model.num_timesteps} frames "
            f"({time.perf_counter() - began:.0f} s)"
        )
        self.runs_done += 1
        return value

    def _say(self, text: str) -> None:
        if self.verbose:
            print(text, flush=True)


def summary_table(study: optuna.Study) -> str:
    """Markdown: per method and env, the mean final return over seeds for each learning rate, best marked."""
    by_setting: dict[tuple[str, str, float], list[float]] = {}
    for point, trial in completed_trials(study).items():
        by_setting.setdefault((point.method, point.env, point.learning_rate), []).append(float(trial.value))
    lines = ["| method | env | learning rate | seeds | mean final return |", "|---|---|---|---|---|"]
    best: dict[tuple[str, str], float] = {}
    for (method, env, _), values in by_setting.items():
        mean = sum(values) / len(values)
        if mean > best.get((method, env), -math.inf):
            best[(method, env)] = mean
    for (method, env, lr), values in sorted(by_setting.items(), key=lambda item: (item[0][0], item[0][1], -item[0][2])):
        mean = sum(values) / len(values)
        mark = " (best)" if mean == best[(method, env)] else ""
        lines.append(f"| {method} | {env} | {lr:g} | {len(values)} | {mean:.2f}{mark} |")
    return "\n".join(lines)
