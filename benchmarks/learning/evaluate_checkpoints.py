"""Evaluate every checkpoint that benchmarks/learning/learning_curve.py --save-dir saved, with deterministic and with
sampled actions, and append one JSON line per checkpoint and mode (the format of learning_curve.py --out, plus "mode").

    python benchmarks/learning/evaluate_checkpoints.py /tmp/mcls/LS --env MCLS-v0 --method rnn_hn --seed 0 \\
        --out benchmarks/results/mcls_checkpoints.jsonl

Sampled actions show what the policy has learned where its most likely action hides it: on MC-LS the deterministic
policy can keep walking into the end wall ("forward" a little likelier than either side) while its samples already
choose the signalled side more often than not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `python benchmarks/<kind>/<x>.py`
import envs  # noqa: F401  (registers the benchmark ids)
from benchmarks.common import add_threads_option, append_record, new_parser, set_threads
from sb3_hypernet import evaluate_meta_policy, load_meta_model


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = new_parser(__doc__)
    parser.add_argument("save_dir", type=Path, help="a learning_curve.py --save-dir: <frames>.zip files")
    parser.add_argument("--env", required=True)
    parser.add_argument("--method", required=True, help="the method's name, for the records")
    parser.add_argument("--seed", type=int, default=0, help="the training seed, for the records")
    parser.add_argument("--n-eval", type=int, default=200, help="meta-episodes per evaluation")
    parser.add_argument("--eval-seed", type=int, default=10_000, help="seed of the evaluation tasks")
    add_threads_option(parser, default=1)
    parser.add_argument("--out", type=Path, required=True)
    return parser


def main() -> None:
    args = build_parser().parse_args()
    set_threads(args.threads)
    checkpoints = sorted(args.save_dir.glob("*.zip"), key=lambda path: int(path.stem))
    if not checkpoints:
        raise SystemExit(f"no <frames>.zip checkpoints in {args.save_dir}")
    for path in checkpoints:
        model = load_meta_model(path)
        for mode, deterministic in (("deterministic", True), ("sampled", False)):
            summary = evaluate_meta_policy(
                model, args.env, args.n_eval, deterministic=deterministic, seed=args.eval_seed
            ).summary()
            record = dict(env=args.env, method=args.method, seed=args.seed, frames=int(path.stem), mode=mode, **summary)
            append_record(args.out, record)
            print(f"{args.env} {path.stem:>9} {mode:<13} meta-episode return {summary['meta_return']['mean']:.2f}")


if __name__ == "__main__":
    main()
