"""Child process of benchmarks/reference/reference_run.py: runs under the reference implementation's own interpreter.

It trains one model through the reference's own ``main.py`` (its argument parsing, ``MetaLearner`` and training loop,
unchanged) and adds three things around it, from outside:

* checkpoints: at the first update at or after each frame count it evaluates the policy and saves the training state
  (parameters, optimiser moments, input and reward normalisers, PPO's update counter, the VAE's trajectory buffer, the
  random states) to ``<save-dir>/state_<frames>.pt``, writes ``<save-dir>/eval_<frames>.json`` and prints one
  ``@@reference-checkpoint <json>`` line for the parent;
* resume: given a save dir that holds a state, it loads the latest one into a freshly built learner and runs only the
  remaining updates. The environments start fresh meta-episodes there (the reference cannot save them);
* evaluation: the reference's own ``utils.evaluation.evaluate`` (deterministic actions, the encoder's hidden state
  carried across the inner episodes, returns split at the env's ``done_mdp``), on ``--n-eval`` tasks drawn from the
  reference env's own task sampler after seeding it with ``--eval-seed``, so every checkpoint sees the same tasks.
  Training's random state is put back afterwards, so an evaluation does not change the training run.

Usage (reference_run.py builds it): ``python reference_worker.py [options] -- <main.py arguments>``.
Only the standard library, NumPy, PyTorch and the reference are imported here: nothing of sb3_hypernet.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import os
import random
import sys
import time
from pathlib import Path

MARKER = "@@reference-checkpoint"


def build_parser() -> argparse.ArgumentParser:
    """The command line before ``--`` (the reference's main.py arguments follow it)."""
    # Not benchmarks.common's helpers: this runs under the reference's interpreter, importing nothing of this repo.
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help="checkout of the reference implementation")
    parser.add_argument("--save-dir", required=True, help="states and evaluations of this run")
    parser.add_argument("--checkpoints", type=float, nargs="+", required=True, help="frame counts still to evaluate")
    parser.add_argument("--n-eval", type=int, default=100, help="tasks (meta-episodes) per evaluation")
    parser.add_argument("--eval-seed", type=int, default=10_000)
    parser.add_argument("--vec-env", choices=["dummy", "subproc"], default="dummy")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--progress-every", type=int, default=25, help="print training progress every N updates")
    return parser


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """This script's options, and the reference's main.py arguments (after ``--``)."""
    parser = build_parser()
    split = argv.index("--") if "--" in argv else len(argv)
    options = parser.parse_args(argv[:split])  # first, so that --help answers without '--'
    if split == len(argv):
        parser.error("the reference's main.py arguments must follow '--'")
    return options, argv[split + 1 :]


class AllCheckpointsDone(Exception):
    """Raised from the training loop once the last checkpoint is evaluated: nothing left to train for."""


def main() -> None:
    opts, main_args = parse(sys.argv[1:])
    reference = Path(opts.reference).resolve()
    save_dir = Path(opts.save_dir).resolve()
    save_dir.mkdir(parents=True, exist_ok=True)
    # The reference's modules are imported by their top-level names (main, utils, models, ...): its checkout comes
    # first on the path, and this script's folder not at all.
    sys.path[:] = [str(reference)] + [p for p in sys.path[1:] if Path(p or ".").resolve() != Path(__file__).parent]
    os.chdir(reference)

    import numpy as np
    import torch

    torch.set_num_threads(opts.threads)
    import gym

    if not gym.__version__.startswith("0.17"):
        print(f"warning: the reference targets gym 0.17, this interpreter has gym {gym.__version__}", flush=True)

    import main as reference_main
    import metalearner
    from environments import parallel_envs
    from environments.env_utils.vec_env.dummy_vec_env import DummyVecEnv
    from utils import evaluation as reference_evaluation
    from utils import helpers as reference_helpers

    class PerEnvDummyVecEnv(DummyVecEnv):
        """The reference's in-process vector env, with ``get_task``/``get_belief`` returning one row per env as its
        ``SubprocVecEnv`` does (its ``DummyVecEnv`` returns only the first env's, which the task-inference methods
        would read as every env's task)."""

        def get_task(self):
            return np.stack([np.asarray(env.get_task()) for env in self.envs])

        def get_belief(self):
            beliefs = [env.get_belief() for env in self.envs]
            return None if beliefs[0] is None else np.stack(beliefs)

    subproc_vec_env = parallel_envs.SubprocVecEnv
    if opts.vec_env == "dummy":
        parallel_envs.SubprocVecEnv = PerEnvDummyVecEnv  # make_vec_envs looks the name up when called

    def rms_modules(learner) -> dict:
        modules = {"policy": learner.policy.actor_critic, "encoder": learner.vae.encoder}
        for name in ("reward_decoder", "state_decoder", "task_decoder"):
            if getattr(learner.vae, name) is not None:
                modules[name] = getattr(learner.vae, name)
        return modules

    def running_stats(module) -> dict:
        """The policy's input normalisers are plain attributes (not buffers), so state_dict() misses them."""
        out = {}
        for name, sub in module.named_modules():
            for attr, value in vars(sub).items():
                if isinstance(value, reference_helpers.RunningMeanStd):
                    out[(name, attr)] = {"mean": value.mean.clone(), "var": value.var.clone(), "count": value.count}
        return out

    class CheckpointedLearner(metalearner.MetaLearner):
        def __init__(self, args, make_logger=True):
            # Train whole updates up to at least the budget (as SB3's learn() does), so the last checkpoint is reached.
            unit = args.policy_num_steps * args.num_processes
            args.num_frames = math.ceil(float(args.num_frames) / unit) * unit
            super().__init__(args, make_logger)
            self.iter_offset = 0  # updates done before this process started (resume)
            self.train_seconds = 0.0
            self.cpu_seconds_before = 0.0
            self._clock: float | None = None
            self.pending = sorted(int(c) for c in opts.checkpoints)
            # The VAE logs at its own iteration count: make it count across resumes.
            self.vae.get_iter_idx = lambda: self.iter_offset + self.iter_idx
            states = sorted(save_dir.glob("state_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
            if states:
                self.restore(torch.load(states[-1], map_location="cpu", weights_only=False))
                print(f"resumed from {states[-1]} ({self.frames} frames, {self.iter_offset} updates)", flush=True)
            self.pending = [c for c in self.pending if c > self.frames or self._unevaluated(c)]
            print(
                f"reference {args.exp_label} on {args.env_name}: {args.num_frames} frames "
                f"({self.num_updates} updates left), checkpoints {self.pending}, lr_policy {args.lr_policy}, "
                f"seed {args.seed}, vec env {opts.vec_env}, torch threads {torch.get_num_threads()}",
                flush=True,
            )
            if self.pending and self.pending[0] <= self.frames:  # saved, then killed before its evaluation
                self.checkpoint(self.iter_offset)

        def _unevaluated(self, frames: int) -> bool:
            return frames <= self.frames and not any(
                frames in json.loads(p.read_text())["targets"] for p in save_dir.glob("eval_*.json")
            )

        # --- state ---

        def state_dict(self, updates_done: int) -> dict:
            storage = self.vae.rollout_storage
            filled = max(storage.buffer_len, storage.insert_idx) if storage.max_buffer_size > 0 else 0
            buffer = None
            if filled:
                buffer = {
                    "prev_state": storage.prev_state[:, :filled].clone(),
                    "next_state": storage.next_state[:, :filled].clone(),
                    "actions": storage.actions[:, :filled].clone(),
                    "rewards": storage.rewards[:, :filled].clone(),
                    "tasks": None if storage.tasks is None else storage.tasks[:filled].clone(),
                    "trajectory_lens": list(storage.trajectory_lens[:filled]),
                    "insert_idx": storage.insert_idx,
                    "buffer_len": storage.buffer_len,
                }
            modules = rms_modules(self)
            return {
                "frames": self.frames,
                "updates": updates_done,
                "train_seconds": self.train_seconds,
                "cpu_seconds": self.cpu_seconds_before + time.process_time(),
                "modules": {name: module.state_dict() for name, module in modules.items()},
                "running_stats": {name: running_stats(module) for name, module in modules.items()},
                "policy_optimiser": self.policy.optimiser.state_dict(),
                "vae_optimiser": self.vae.optimiser_vae.state_dict(),
                "ppo_update_index": self.policy.update_index,
                "ret_rms": copy.deepcopy(vars(self.envs.venv.ret_rms)) if self.args.norm_rew_for_policy else None,
                "vae_buffer": buffer,
                "rng": {
                    "python": random.getstate(),
                    "numpy": np.random.get_state(),
                    "torch": torch.get_rng_state(),
                },
            }

        def restore(self, state: dict) -> None:
            modules = rms_modules(self)
            for name, module in modules.items():
                module.load_state_dict(state["modules"][name])
                for (sub_name, attr), stats in state["running_stats"][name].items():
                    rms = getattr(module.get_submodule(sub_name), attr)
                    rms.mean, rms.var, rms.count = stats["mean"], stats["var"], stats["count"]
            self.policy.optimiser.load_state_dict(state["policy_optimiser"])
            self.vae.optimiser_vae.load_state_dict(state["vae_optimiser"])
            self.policy.update_index = state["ppo_update_index"]
            if state["ret_rms"] is not None:
                vars(self.envs.venv.ret_rms).update(state["ret_rms"])
            buffer = state["vae_buffer"]
            if buffer is not None:
                storage = self.vae.rollout_storage
                filled = buffer["prev_state"].shape[1]
                for key in ("prev_state", "next_state", "actions", "rewards"):
                    getattr(storage, key)[:, :filled] = buffer[key]
                if buffer["tasks"] is not None:
                    storage.tasks[:filled] = buffer["tasks"]
                storage.trajectory_lens[:filled] = buffer["trajectory_lens"]
                storage.insert_idx, storage.buffer_len = buffer["insert_idx"], buffer["buffer_len"]
            random.setstate(state["rng"]["python"])
            np.random.set_state(state["rng"]["numpy"])
            torch.set_rng_state(state["rng"]["torch"])
            self.frames = state["frames"]
            self.iter_offset = state["updates"]
            self.num_updates = max(self.num_updates - self.iter_offset, 0)
            self.train_seconds = state["train_seconds"]
            self.cpu_seconds_before = state["cpu_seconds"]

        # --- evaluation ---

        def evaluate(self) -> np.ndarray:
            """Returns of each inner episode, (n_eval, episodes per task), by the reference's own evaluate()."""
            eval_args = copy.copy(self.args)
            eval_args.num_processes = opts.n_eval
            saved = random.getstate(), np.random.get_state(), torch.get_rng_state()
            parallel_envs.SubprocVecEnv = PerEnvDummyVecEnv  # n_eval envs in this process, tasks from `random`
            random.seed(opts.eval_seed)
            np.random.seed(opts.eval_seed)
            torch.manual_seed(opts.eval_seed)
            try:
                returns = reference_evaluation.evaluate(
                    args=eval_args,
                    policy=self.policy,
                    ret_rms=self.envs.venv.ret_rms if self.args.norm_rew_for_policy else None,
                    iter_idx=0,  # the evaluation envs' seed is args.seed * 42 + iter_idx: the same every time
                    mode="train",  # as MetaLearner.log evaluates on the non-Meta-World envs
                    encoder=self.vae.encoder,
                    return_extra_dict=False,
                )
            finally:
                if opts.vec_env == "subproc":
                    parallel_envs.SubprocVecEnv = subproc_vec_env
                random.setstate(saved[0])
                np.random.set_state(saved[1])
                torch.set_rng_state(saved[2])
            return returns.cpu().numpy()

        def checkpoint(self, updates_done: int) -> None:
            targets = []
            while self.pending and self.pending[0] <= self.frames:
                targets.append(self.pending.pop(0))
            fps = self.frames / self.train_seconds if self.train_seconds > 0 else float("nan")
            state = self.state_dict(updates_done)
            path = save_dir / f"state_{self.frames}.pt"
            torch.save(state, path.with_suffix(".tmp"))
            os.replace(path.with_suffix(".tmp"), path)
            started = time.perf_counter()
            returns = self.evaluate()
            finite = all(bool(torch.isfinite(p).all()) for m in rms_modules(self).values() for p in m.parameters())
            result = {
                "frames": self.frames,
                "targets": targets,
                "updates": updates_done,
                "fps": fps,
                "train_seconds": self.train_seconds,
                "eval_seconds": time.perf_counter() - started,
                "cpu_seconds": state["cpu_seconds"],
                "inner_returns": returns.tolist(),
                "finite": finite,
                "ppo_update_index": self.policy.update_index,
            }
            path = save_dir / f"eval_{self.frames}.json"
            path.with_suffix(".tmp").write_text(json.dumps(result))
            os.replace(path.with_suffix(".tmp"), path)
            print(f"{MARKER} {json.dumps(result)}", flush=True)

        # --- the hook: MetaLearner.train() calls log() once before training and after every update ---

        def log(self, run_stats, train_stats, start_time):
            now = time.perf_counter()
            if self._clock is None:  # the call before the first rollout
                self._clock = now
                if not self.pending:
                    raise AllCheckpointsDone
                return
            self.train_seconds += now - self._clock
            updates_done = self.iter_offset + self.iter_idx + 1
            if updates_done % opts.progress_every == 0:
                print(
                    f"updates {updates_done} frames {self.frames} train fps {self.frames / self.train_seconds:.0f}",
                    flush=True,
                )
            if self.pending and self.frames >= self.pending[0]:
                self.checkpoint(updates_done)
            if not self.pending:
                raise AllCheckpointsDone
            self._clock = time.perf_counter()

    reference_main.MetaLearner = CheckpointedLearner
    sys.argv = ["main.py", *main_args]
    with contextlib.suppress(AllCheckpointsDone):
        reference_main.main()
    print("reference run: all checkpoints done", flush=True)


if __name__ == "__main__":
    main()
