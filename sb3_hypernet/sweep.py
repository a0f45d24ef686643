"""The papers' protocol as one command: learning-rate x seed grids on Optuna, from one machine to many.

    python -m sb3_hypernet.sweep --methods rnn rnn_s rnn_hn --envs GridNavi-v0 --study-name gridnavi
    python -m sb3_hypernet.sweep --methods rnn rnn_s rnn_hn --envs GridNavi-v0 --study-name gridnavi \\
        --storage postgresql://sweeper@db-host:5432/sweeps          # the same command on every machine

Every result in the papers is the best of five learning rates with three seeds each (NeurIPS 2023, section 4 and
appendix 8.2). A sweep is one Optuna study whose trials are the grid points (method, env, learning rate,
seed), each trained with its zoo entry (``<method>.yml`` of the package's zoo configs, or of ``--conf-dir``) for
everything but the learning rate and seed.

- Storage: a journal file by default (``<log-folder>/<study-name>.log``); any SQLAlchemy URL (PostgreSQL for many
  machines, SQLite) as ``--storage``. Every worker, on any host, runs the same command against the same storage and
  takes the next grid point nobody has run: the grid is enqueued as waiting trials, which Optuna hands out one
  worker each.
- A killed worker loses only its current run. Runs send a heartbeat (Optuna's, on relational storages; the same
  protocol kept in the trial's system attributes on a journal file); a run whose heartbeat stops for
  ``--grace-period`` seconds is failed by the next worker that looks and re-enqueued (Optuna's
  ``RetryHeartbeatStaleTrialCallback``). Re-running the command resumes the study; a grid point is never run twice to
  completion (a point enqueued twice by two workers starting together is run by the earlier trial only).
- Each run reports its learning curve to the study at fixed frame checkpoints: the mean deterministic meta-episode
  return as the trial's intermediate values (``trial.report``), and the whole evaluation summary (per-inner-episode
  returns, CIs, the benchmark's reference) in the trial's ``curve`` user attribute. Its value is the last
  checkpoint's mean. Model, VecNormalize statistics and TensorBoard logs go to
  ``<log-folder>/<study-name>/<method>/<env>/lr<lr>_seed<seed>/`` in rl_zoo3's layout, so ``python -m
  sb3_hypernet.evaluate --model .../<env>.zip`` reads them.
- Figures and tables from a study: ``python -m sb3_hypernet.plot``; live: ``optuna-dashboard <storage>``.

All runs train with :class:`~sb3_hypernet.MetaRecurrentPPO` (``meta_ppo_lstm``), which is RecurrentPPO's update
for the end-to-end methods (tested bit for bit) and what the task-inference methods need.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import optuna
import torch as th
from rl_zoo3.utils import StoreDict

from sb3_hypernet.experiments.arguments import above, at_least, seed
from sb3_hypernet.experiments.configs import zoo_config
from sb3_hypernet.experiments.sweep import (
    LEARNING_RATES,
    SweepWorker,
    completed_trials,
    make_grid,
    open_storage,
    open_study,
    summary_table,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", nargs="+", required=True, help="zoo config names (rnn_hn, scale/rnn_hn_256, ...)")
    parser.add_argument("--envs", nargs="+", required=True, help="meta-episode env ids")
    parser.add_argument("--study-name", required=True)
    parser.add_argument("--storage", default=None, help="journal file path or database URL (default: a journal file)")
    parser.add_argument("--learning-rates", type=above(0), nargs="+", default=list(LEARNING_RATES))
    parser.add_argument("--seeds", type=seed, nargs="+", default=None, help="default: 73 20 3 (and 99 on MC-LS)")
    parser.add_argument(
        "--frames",
        type=at_least(1),
        default=None,
        help="frames per run (default: the zoo entry's); SB3 rounds it up to whole rollouts (n_steps x n_envs)",
    )
    parser.add_argument("--checkpoints", type=at_least(1), default=10, help="evaluations per run, evenly spaced")
    parser.add_argument("--n-eval", type=at_least(1), default=100, help="meta-episodes per evaluation")
    parser.add_argument("--eval-seed", type=seed, default=10_000)
    parser.add_argument("--conf-dir", default=None, help="folder of <method>.yml files (default: the package's)")
    parser.add_argument("-f", "--log-folder", default="logs/sweeps")
    parser.add_argument("--vec-env", choices=["dummy", "array"], default="dummy")
    parser.add_argument(
        "-params", "--hyperparams", nargs="+", action=StoreDict, default={}, help="entry overrides, as zoo's -params"
    )
    parser.add_argument("--threads", type=at_least(1), default=1, help="torch threads per worker (default 1)")
    parser.add_argument("--heartbeat-interval", type=at_least(1), default=60, help="seconds between a run's heartbeats")
    parser.add_argument("--grace-period", type=at_least(1), default=None, help="seconds before a silent run is re-run")
    parser.add_argument("--max-retry", type=at_least(0), default=3, help="re-runs of a run whose worker died")
    parser.add_argument("--poll", type=above(0), default=5.0, help="seconds between looks while others run")
    parser.add_argument("-P", "--progress", action="store_true", help="SB3's progress bar for each run")
    parser.add_argument(
        "--save-optimizer-state",
        action="store_true",
        help="save each run's optimiser state too, to train it on later (default: zips for evaluation only)",
    )
    parser.add_argument("--verbose", type=at_least(0), default=1)
    parser.add_argument("--gym-packages", nargs="*", default=["envs"], help="modules that register the env ids")
    args = parser.parse_args(argv)
    if args.grace_period is not None and args.grace_period <= args.heartbeat_interval:
        parser.error(
            f"--grace-period ({args.grace_period} s) must exceed --heartbeat-interval ({args.heartbeat_interval} s), "
            "or every live run would count as dead"
        )

    import importlib

    for package in args.gym_packages:
        importlib.import_module(package)
    th.set_num_threads(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING if args.verbose < 2 else optuna.logging.INFO)
    try:
        grid = make_grid(args.methods, args.envs, args.learning_rates, args.seeds)
        for method in args.methods:
            zoo_config(method, args.conf_dir)  # before the study is opened
    except ValueError as error:
        parser.error(str(error))
    storage_url = args.storage or str(Path(args.log_folder) / f"{args.study_name}.log")
    storage = open_storage(storage_url, args.heartbeat_interval, args.grace_period, args.max_retry)
    study = open_study(storage, args.study_name, grid)
    worker = SweepWorker(
        study,
        grid,
        config_dir=args.conf_dir,
        log_folder=args.log_folder,
        frames=None if args.frames is None else int(args.frames),
        n_checkpoints=args.checkpoints,
        n_eval=args.n_eval,
        eval_seed=args.eval_seed,
        vec_env=args.vec_env,
        hyperparams=args.hyperparams,
        heartbeat_interval=args.heartbeat_interval,
        grace_period=args.grace_period,
        max_retry=args.max_retry,
        poll=args.poll,
        progress_bar=args.progress,
        save_optimizer_state=args.save_optimizer_state,
        verbose=args.verbose,
    )
    if args.verbose:
        print(f"Study {args.study_name!r} on {storage_url}: {len(grid)} runs in this grid")
    done = worker.run()
    if args.verbose:
        finished = completed_trials(study)
        print(
            f"Runs completed by this worker: {done}; "
            f"grid points complete: {sum(p in finished for p in grid)}/{len(grid)}"
        )
        print(summary_table(study))
    return 0


if __name__ == "__main__":
    sys.exit(main())
