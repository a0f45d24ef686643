"""Training throughput (frames/s) of RNN, RNN+S, RNN+HN and sb3-contrib's stock recurrent policy, in one run.

    python benchmarks/speed/throughput.py --updates 5 --repeats 5
    python benchmarks/speed/throughput.py --updates 3 --repeats 5 --threads 1 --variants   # RNN+HN's compute options

Every method trains with its zoo entry for --env (zoo_configs/rnn.yml, rnn_s.yml, rnn_hn.yml, built by rl_zoo3 via
sb3_hypernet.zoo.build_model): on GridNavi-v0 16 envs x 60 steps, 2 epochs, 4 minibatches, reward normalisation,
GRU 256, policy 256-128, state embedding 256, latent embedding 25. The stock policy is sb3-contrib's
MultiInputLstmPolicy (one shared LSTM of 256, net_arch [256, 128]) on the RNN entry's settings. Repetitions are
interleaved across methods and medians reported, with ratios to the stock policy, so a noisy machine affects all
methods alike. Finally it times the hypernetwork's generated layers alone (forward + backward at the update's
minibatch size, forward at the rollout's batch size) and reports their share of an RNN+HN update.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch as th

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `python benchmarks/<kind>/<x>.py`
import envs  # noqa: F401
from benchmarks.common import ZOO_CONFIGS, add_threads_option, new_parser, set_threads
from sb3_hypernet.experiments.zoo import build_model

STOCK = dict(
    policy="MultiInputLstmPolicy",
    policy_kwargs="dict(lstm_hidden_size=256, shared_lstm=True, enable_critic_lstm=False, net_arch=[256, 128], "
    "optimizer_kwargs=dict(eps=1e-5))",
)
METHODS = {
    "stock LSTM": ("rnn.yml", STOCK),
    "RNN": ("rnn.yml", {}),
    "RNN+S": ("rnn_s.yml", {}),
    "RNN+HN": ("rnn_hn.yml", {}),
}


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = new_parser(__doc__)
    parser.add_argument("--env", default="GridNavi-v0")
    parser.add_argument("--updates", type=int, default=5, help="PPO updates (rollout + training) per measurement")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved measurements per method")
    add_threads_option(parser)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--variants",
        action="store_true",
        help="also RNN+HN with its actor and critic computed apart (no shared first outer product), and with foreach "
        "and fused Adam",
    )
    return parser


def build_models(args: argparse.Namespace) -> dict[str, Any]:
    """Every method's model from its zoo entry (and, with --variants, RNN+HN's compute options)."""
    models = {}
    for name, (conf, overrides) in METHODS.items():
        models[name] = build_model(ZOO_CONFIGS / conf, args.env, seed=0, device=args.device, **overrides)[0]
    if args.variants:
        from sb3_hypernet.common.heads import MetaPolicyHead

        apart = build_model(ZOO_CONFIGS / "rnn_hn.yml", args.env, seed=0, device=args.device)[0]
        head = apart.policy.mlp_extractor
        head.forward = lambda condition, state, head=head: MetaPolicyHead.forward(head, condition, state)
        models["RNN+HN apart"] = apart
        for form in ("foreach", "fused"):
            model = build_model(ZOO_CONFIGS / "rnn_hn.yml", args.env, seed=0, device=args.device)[0]
            policy = model.policy
            kwargs = {**(policy.optimizer_kwargs or {}), form: True}
            policy.optimizer = policy.optimizer_class(policy.parameters(), lr=model.lr_schedule(1.0), **kwargs)
            models[f"RNN+HN {form}"] = model
    return models


def generated_layers_seconds(head: Any, batch: int, backward: bool, device: str, repeats: int = 20) -> float:
    """Median time of RNN+HN's generated actor and critic layers on a random batch (forward, or forward + backward)."""
    width = head.state_embedding[0].out_features
    cond = head.latent_embedding[0].out_features
    x = th.randn(batch, width, requires_grad=backward, device=device)
    z = th.randn(batch, cond, requires_grad=backward, device=device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = head.actor(x, z).sum() + head.critic(x, z).sum()
        if backward:
            out.backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def optimizer_seconds(policy: Any) -> float:
    """Time of one gradient clipping and optimiser step over the policy's parameters."""
    start = time.perf_counter()
    th.nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
    policy.optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    args = build_parser().parse_args()
    set_threads(args.threads)
    models = build_models(args)
    reference = models["RNN+HN"]
    n_envs, n_steps, n_epochs = reference.n_envs, reference.n_steps, reference.n_epochs
    n_minibatches = n_envs * n_steps // reference.batch_size
    for model in models.values():
        assert (model.n_envs, model.n_steps, model.batch_size) == (n_envs, n_steps, reference.batch_size)
        model.learn(n_envs * n_steps)  # warm-up

    frames = args.updates * n_envs * n_steps
    fps: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.repeats):
        for name, model in models.items():
            start = time.perf_counter()
            model.learn(frames, reset_num_timesteps=False)
            fps[name].append(frames / (time.perf_counter() - start))

    print(
        f"{args.env} (zoo settings), {n_envs} envs x {n_steps} steps, {n_epochs} epochs x {n_minibatches} minibatches, "
        f"device {args.device}, torch {th.__version__}, torch threads {th.get_num_threads()}, "
        f"median of {args.repeats} x {frames} frames"
    )
    stock = statistics.median(fps["stock LSTM"])
    print(f"{'method':<16}{'frames/s':>10}{'x stock':>9}   all runs")
    for name, values in fps.items():
        median = statistics.median(values)
        print(f"{name:<16}{median:>10.0f}{median / stock:>9.2f}   {' '.join(f'{v:.0f}' for v in values)}")

    # Share of an RNN+HN update spent in the generated layers (actor and critic base networks).
    head = models["RNN+HN"].policy.mlp_extractor
    width = head.state_embedding[0].out_features
    cond = head.latent_embedding[0].out_features
    n_macs = sum(layer.weight.numel() for net in (head.actor, head.critic) for layer in net.layers)
    minibatch = n_envs * n_steps // n_minibatches
    minibatch_seconds = generated_layers_seconds(head, minibatch, True, args.device)
    per_update = n_epochs * n_minibatches * minibatch_seconds
    rollout_step = generated_layers_seconds(head, n_envs, False, args.device)
    # A rollout's forward passes, then the one for the last observation's value.
    per_update += n_steps * rollout_step + generated_layers_seconds(head, n_envs, False, args.device)
    update_seconds = n_envs * n_steps / statistics.median(fps["RNN+HN"])
    rnn_seconds = n_envs * n_steps / statistics.median(fps["RNN"])
    print(
        f"RNN+HN generated layers: {n_macs / 1e6:.2f}M multiply-adds per sample; {per_update * 1e3:.0f} ms of a "
        f"{update_seconds * 1e3:.0f} ms update ({per_update / update_seconds:.0%}); RNN+HN update minus RNN update: "
        f"{(update_seconds - rnn_seconds) * 1e3:.0f} ms"
    )

    # How far the generated layers are from what one plain GEMM of the same multiply-adds achieves here: the ceiling
    # of any exact implementation, since every multiply-add of the factorised form is needed.
    a, b = (
        th.randn(minibatch, width * (cond + 1), device=args.device),
        th.randn(width * (cond + 1), width, device=args.device),
    )
    gemm_times = []
    for _ in range(20):
        start = time.perf_counter()
        a @ b
        gemm_times.append(time.perf_counter() - start)
    gemm_rate = a.shape[0] * a.shape[1] * b.shape[1] / statistics.median(gemm_times)
    layers_rate = 3 * n_macs * minibatch / minibatch_seconds  # forward + two backward products
    stock_seconds = n_envs * n_steps / statistics.median(fps["stock LSTM"])
    floor = 7 * n_macs * n_envs * n_steps / gemm_rate  # rollout forward + 2 epochs x (forward + backward)
    print(
        f"RNN+HN generated layers: {layers_rate / 1e9:.1f} GMAC/s (forward + backward, batch {minibatch}); one plain "
        f"GEMM of their shape: {gemm_rate / 1e9:.1f} GMAC/s; at that rate the generated layers alone take "
        f"{floor * 1e3:.0f} ms per update, against {stock_seconds / 0.6 * 1e3:.0f} ms for a whole update at 0.6x stock"
    )

    # The rest of the difference: Adam and gradient clipping over the hypernetwork's 5M parameters, per minibatch.
    policy = models["RNN+HN"].policy
    for param in policy.parameters():
        param.grad = th.randn_like(param)
    optimizer_update = n_epochs * n_minibatches * statistics.median(optimizer_seconds(policy) for _ in range(10))
    print(
        f"RNN+HN gradient clipping + Adam: {optimizer_update * 1e3:.0f} ms per update; generated layers + optimizer "
        f"{(per_update + optimizer_update) * 1e3:.0f} ms vs {(update_seconds - rnn_seconds) * 1e3:.0f} ms extra over "
        "RNN"
    )
    if args.variants:
        default_optimizer = policy.optimizer
        for form in ("foreach", "fused"):
            policy.optimizer = models[f"RNN+HN {form}"].policy.optimizer.__class__(
                policy.parameters(), lr=1e-4, **{**(policy.optimizer_kwargs or {}), form: True}
            )
            seconds = n_epochs * n_minibatches * statistics.median(optimizer_seconds(policy) for _ in range(10))
            print(f"RNN+HN gradient clipping + {form} Adam: {seconds * 1e3:.0f} ms per update")
        policy.optimizer = default_optimizer


if __name__ == "__main__":
    main()
