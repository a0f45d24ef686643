"""Does one PPO update compute the same losses on --device as on the CPU? A zoo entry on GridNavi, same rollout.

    python benchmarks/probes/device_parity.py --device cuda
    python benchmarks/probes/device_parity.py --device cuda --tf32          # how far TensorFloat-32 moves them
    python benchmarks/probes/device_parity.py --device cpu --n-envs 2       # the check itself, where no GPU is

Builds the same seeded model twice from its zoo entry (zoo_configs/<method>.yml, GridNavi-v0, MetaRecurrentPPO),
on the CPU and on --device, with --n-envs envs and one epoch of one minibatch (the whole rollout). Both collect a
rollout; the --device model then gets a copy of the CPU model's, so both update from the same data at the same
initial parameters (initialised on the CPU, then moved; checked equal). The logged ``train/`` values of that one
update are the losses of the same batch: they must agree within --rtol (relative) or --atol (absolute, for terms
near zero such as the policy loss of normalised advantages at ratio 1). Also compared, with looser bounds that only
a wrong computation exceeds: the gradients the update stepped with (relative L2 difference, --grad-rtol) and the
parameters after the step (largest difference as a fraction of the learning rate: Adam's first step is about the
learning rate times the gradient's sign, so near-zero gradients may differ by a fraction of it). Without --tf32
every float32 product runs in IEEE float32 (cuBLAS, cuDNN's convolutions and GRU); with it TensorFloat-32 is
allowed. Prints a table and, last, one JSON line; exits 1 if a value is out of tolerance.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.logger import Logger

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `python benchmarks/<kind>/<x>.py`
import envs  # noqa: F401  (registers the benchmark ids)
from benchmarks.common import ZOO_CONFIGS, add_threads_option, new_parser, set_threads
from sb3_hypernet.experiments.zoo import build_model, enable_tf32

ENV_ID = "GridNavi-v0"


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = new_parser(__doc__)
    parser.add_argument("--device", default="cuda", help="the device compared with the CPU")
    parser.add_argument("--method", default="rnn_hn", help="zoo config name (zoo_configs/<method>.yml)")
    parser.add_argument("--n-envs", type=int, default=16, help="envs of the rollout (GridNavi's zoo entry has 16)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tf32", action="store_true", help="allow TensorFloat-32 on CUDA (off: IEEE float32)")
    parser.add_argument("--rtol", type=float, default=1e-4, help="relative tolerance of the logged losses")
    parser.add_argument("--atol", type=float, default=1e-6, help="absolute tolerance of the logged losses")
    parser.add_argument("--grad-rtol", type=float, default=1e-2, help="bound on the gradients' relative L2 difference")
    parser.add_argument(
        "--step-tol", type=float, default=0.5, help="bound on the parameters' largest difference after the step, in lr"
    )
    add_threads_option(parser)
    return parser


def set_precision(tf32: bool) -> None:
    """TensorFloat-32 on, or every CUDA float32 product in IEEE float32 (torch's default lets cuDNN use TF32)."""
    if tf32:
        enable_tf32()
    else:
        th.backends.cuda.matmul.fp32_precision = "ieee"
        th.backends.cudnn.conv.fp32_precision = "ieee"
        th.backends.cudnn.rnn.fp32_precision = "ieee"


def collected(args: argparse.Namespace, device: str) -> Any:
    """The zoo model on ``device`` after one rollout, its update not yet run."""
    overrides = dict(n_envs=args.n_envs, batch_size=args.n_envs * 60, n_epochs=1)
    model, _ = build_model(
        ZOO_CONFIGS / f"{args.method}.yml", ENV_ID, seed=args.seed, device=device, algo="meta_ppo_lstm", **overrides
    )
    model.set_logger(Logger(None, []))  # keeps the recorded values, writes nothing
    model.train = lambda: None  # collect only; the update runs in update()
    model.learn(model.n_envs * model.n_steps)
    del model.train
    return model


def update(model: Any, seed: int) -> dict[str, float]:
    """Run the update from the model's rollout buffer; its logged train/ values."""
    np.random.seed(seed)  # the buffers draw their minibatch layout from NumPy's global generator
    th.manual_seed(seed)
    model.train()
    return {key: float(value) for key, value in model.logger.name_to_value.items() if key.startswith("train/")}


def parameters(model: Any) -> th.Tensor:
    """Every parameter of the policy, flattened on the CPU."""
    return th.cat([p.detach().cpu().flatten() for p in model.policy.parameters()])


def gradients(model: Any) -> th.Tensor:
    """The gradients the update stepped with (after clipping), flattened on the CPU; zero where there is none."""
    grads = [th.zeros_like(p) if p.grad is None else p.grad for p in model.policy.parameters()]
    return th.cat([g.detach().cpu().flatten() for g in grads])


def main() -> None:
    args = build_parser().parse_args()
    set_threads(args.threads)
    set_precision(args.tf32)
    reference = collected(args, "cpu")
    other = collected(args, args.device)
    same_start = th.equal(parameters(reference), parameters(other))
    rollout = copy.deepcopy(reference.rollout_buffer)
    rollout.device = other.device
    other.rollout_buffer = rollout
    expected, actual = update(reference, args.seed), update(other, args.seed)
    learning_rate = reference.lr_schedule(reference._current_progress_remaining)

    name = th.cuda.get_device_name(other.device) if other.device.type == "cuda" else "cpu"
    print(
        f"{args.method} (zoo entry, {ENV_ID}, {args.n_envs} envs x 60 steps, one minibatch), torch {th.__version__}, "
        f"device {args.device} ({name}) against cpu, TF32 {'on' if args.tf32 else 'off'}, seed {args.seed}"
    )
    print(f"{'value':<30}{'cpu':>15}{args.device:>15}{'|difference|':>14}{'tolerance':>11}  ok")
    worst = 0.0
    failed = [] if same_start else ["initial parameters"]
    for key in sorted(expected):
        if key not in actual:
            failed.append(key)
            continue
        difference = abs(actual[key] - expected[key])
        tolerance = args.atol + args.rtol * abs(expected[key])
        ok = difference <= tolerance
        worst = max(worst, difference / max(abs(expected[key]), args.atol / args.rtol))
        failed += [] if ok else [key]
        print(f"{key:<30}{expected[key]:>15.7g}{actual[key]:>15.7g}{difference:>14.3g}{tolerance:>11.2g}  {ok}")
    cpu_grad, other_grad = gradients(reference), gradients(other)
    grad_difference = float((other_grad - cpu_grad).norm() / cpu_grad.norm().clamp_min(1e-30))
    step = (parameters(other) - parameters(reference)).abs() / learning_rate
    for key, value, bound in (
        ("gradient relative L2 difference", grad_difference, args.grad_rtol),
        ("parameters after step, max / lr", float(step.max()), args.step_tol),
    ):
        failed += [] if value <= bound else [key]
        print(f"{key:<30}{'':>15}{'':>15}{value:>14.3g}{bound:>11.2g}  {value <= bound}")
    print(f"initial parameters equal: {same_start}; parameters after step, mean |difference| / lr {step.mean():.3g}")
    summary = dict(
        check="device_parity",
        device=args.device,
        device_name=name,
        tf32=args.tf32,
        passed=not failed,
        failed=failed,
        max_loss_relative_difference=worst,
        gradient_relative_difference=grad_difference,
        step_max_over_lr=float(step.max()),
        step_mean_over_lr=float(step.mean()),
        same_initial_parameters=same_start,
    )
    print(json.dumps(summary))
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
