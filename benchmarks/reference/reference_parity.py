"""Module-level parity of our policies and losses with the authors' reference implementation (jacooba/hyper).

    python benchmarks/reference/reference_parity.py --reference PATH [--methods RNN TI++HN ...]
        [--sections modules init loop] [--init-seeds 30] [--out FILE]

PATH is a checkout of https://github.com/jacooba/hyper (MIT; built on VariBAD). Its modules are imported from PATH at
run time; nothing of it is copied here. What those modules import but the compared modules never use (``gym``,
environment registration, ``utils.helpers.make_env``) is replaced by small stubs, so the harness runs in this
project's environment (gymnasium 1.x, numpy 2, torch 2.x) without gym 0.17 or MuJoCo; the reference's changes to
torch's distribution classes (made when its policy module is imported) are lent to it only while its code runs.

Methods: RNN, RNN+S, RNN+HN, TI-Naive, TI, TI++HN, BI++HN, Multi+HN, VI, VI+HN on GridNavi-v0, and VI on Walker
(VI-Walker, synthetic meta-episodes of the right shapes). Per method our model is built exactly as its zoo entry
builds it, and the reference's modules with the reference's settings for it (its experiment set for the env,
``experiment_sets/models.py``, the env's config file and ``config/default_conf.py``); the searched or tuned
settings (learning rates, the grid state embedding) are set to ours. Our weights (the zoo initialisation plus a
seeded perturbation, so that no path is trivially zero) are copied into the reference's modules through an explicit
table of parameter roles (:class:`ParamRole`; every parameter covered, shapes checked), and both sides read the same
meta-episodes: the reference's encoder reads (a_t, r_t, s_{t+1}) after a prior, ours (s_t, a_{t-1}, r_{t-1},
episode_done), each built from the same trajectory.

Compared, to float32 tolerance: normalisers (state, belief, task) and the normalised inputs; latents as built and
with each deliberate difference removed; action distributions (SB3's against the reference's) and values; the PPO
loss terms (policy, clipped Huber value loss, entropy) and the advantage normalisation through our update's own
code; gradients per parameter group, clipped as the zoo entry clips them; RecurrentPPO's cut sequences; one Adam
step of each side's optimisers from the same gradients; the multi-task pre-training phase where there is one; and
VariBAD's VAE (reward, state and task reconstruction, KL, their sum, its gradients and Adam step), with the
reference's latents and ours made comparable (shared noise, the first latent from an all-zero input), plus the
subsampled ELBO estimators of the MuJoCo settings by their mean and spread over draws.

Since our weights are copied into the reference's modules, the module comparisons cannot see how each side
initialises its modules or trains them; two more sections do (for RNN, RNN+S, RNN+HN, TI++HN and VI+HN):

- ``init``: each side's modules built fresh with its own initialisation, once per seed (``--init-seeds``, 30): per
  parameter role, the mean and standard deviation of the entries (a hypernetwork head's weight and bias are roles of
  their own; a one-entry parameter by its mean absolute value), the state embeddings at the reference's own state
  width (its environment appends a done flag), and the initial functions on the batch: latent and condition
  embedding, the spread of the action log-probabilities and the entropy, the values, and the norms of the generated
  base-network weights and biases per layer. Two statistics are equal when their means over seeds are within
  :data:`INIT_Z` standard errors.
- ``loop``: on the same rewards (GridNavi-v0 meta-episodes as rollouts of 16 envs x 60 steps) and values, GAE
  advantages and returns (our rollout buffer against the reference's OnlineStorage), the value bootstrap where a
  meta-episode ends, the reward normalisers (SB3's VecNormalize with the zoo's settings against the reference's, on
  four rollouts), the learning rates over the run, the gradient steps per update, and the composition of a PPO
  epoch's minibatches (tasks per minibatch, the spread of a minibatch's mean advantage, the history each step's
  encoder gradient reaches), over 50 draws of each side's sampler.

Each line says ``equal`` (max abs difference within tolerance), or how large the difference is and which entry of
:data:`DELIBERATE` (the table of deliberate differences, printed at the end) explains it, or ``UNEXPLAINED`` with
where it comes from in each code base. The last line is ``parity: K of N equal, D deliberate, U unexplained``.
With ``--out`` the report is also written as markdown. About two and a half minutes and 2.5 GB on a 2-core CPU with
one thread (the module comparisons about a minute and a half).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `python benchmarks/<kind>/<x>.py`
from benchmarks.common import REPO_ROOT, add_threads_option, set_threads

DEFAULT_METHODS = (
    "RNN",
    "RNN+S",
    "RNN+HN",
    "TI-Naive",
    "TI",
    "TI++HN",
    "BI++HN",
    "Multi+HN",
    "VI",
    "VI+HN",
    "VI-Walker",
)


#: The parts of the comparison (--sections).
SECTIONS = ("modules", "init", "loop")


def build_parser() -> argparse.ArgumentParser:
    """The command line (built before the heavy imports, so that ``--help`` is quick)."""
    parser = argparse.ArgumentParser(
        description="Module-level parity of our policies and losses with the reference implementation (jacooba/hyper)."
    )
    parser.add_argument("--reference", required=True, help="path to a checkout of github.com/jacooba/hyper")
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), help="methods to compare")
    parser.add_argument("--meta-episodes", type=int, default=4, help="GridNavi meta-episodes in the batch (60 steps)")
    parser.add_argument(
        "--mujoco-meta-episodes", type=int, default=2, help="Walker meta-episodes in the batch (2 x 200 steps)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the batch, the zoo model and the perturbation")
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=SECTIONS,
        default=list(SECTIONS),
        help="modules: our weights in the reference's modules; init: each side's own initialisation over seeds; "
        "loop: returns, reward normalisation, minibatches and schedules of the training loop",
    )
    parser.add_argument(
        "--init-seeds", type=int, default=30, help="seeds of the initialisation comparison (fresh modules per seed)"
    )
    parser.add_argument("--out", default=None, help="also write the report as markdown to this file")
    add_threads_option(parser, default=1)
    return parser


import contextlib  # noqa: E402  (after the parser on purpose: --help needs none of this)
import copy  # noqa: E402
import dataclasses  # noqa: E402
import hashlib  # noqa: E402
import importlib  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
from collections.abc import Callable, Iterator, Sequence  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch as th  # noqa: E402
from gymnasium import spaces  # noqa: E402

#: Files of the reference checkout that the harness imports or reads; a folder without them is not a checkout.
#: The reference's config files (argument parsers) of the compared environments.
CONFIG_MODULES = ("config.gridworld.args_grid_varibad", "config.mujoco.args_walker_varibad")
REFERENCE_FILES = (
    "models/policy.py",
    "models/encoder.py",
    "models/aggregator.py",
    "models/decoder.py",
    "vae.py",
    "algorithms/ppo.py",
    "utils/helpers.py",
    "utils/storage_vae.py",
    "config/default_conf.py",
    "config/gridworld/args_grid_varibad.py",
    "config/mujoco/args_walker_varibad.py",
    "experiment_sets/models.py",
    "experiment_sets/all_envs.py",
    "algorithms/online_storage.py",
    "environments/env_utils/vec_env/__init__.py",
    "environments/env_utils/vec_env/vec_normalize.py",
    "environments/env_utils/running_mean_std.py",
)
#: A name that only the reference's policy module defines (the hypernetwork heads), to tell a checkout from a folder
#: that merely has files of the same names (e.g. VariBAD's own code base).
REFERENCE_MARKER = ("models/policy.py", "hyper_final_to_actor_weight")
#: Top-level module names of the reference (and the stubbed ``gym``): held in ``sys.modules`` only while importing.
REFERENCE_TOP_LEVEL = ("utils", "models", "config", "algorithms", "experiment_sets", "environments", "vae", "gym")

#: Deliberate differences between our code and the reference: key -> what differs and where. A line that differs by
#: more than the tolerance names one or more of these keys, or says UNEXPLAINED.
DELIBERATE: dict[str, str] = {
    "first-latent": (
        "first latent: ours reads s_0 (with zero previous action and reward) at the first step; the reference's "
        "prior is the encoder's output for an all-zero GRU input, and its GRU reads the first transition from h=0 "
        "(reference models/encoder.py prior()). Every later latent inherits the extra step through the GRU state."
    ),
    "episode-done": (
        "our encoder reads an episode_done flag (1 on the first step of inner episodes 2..k) as one more GRU input "
        "column; the reference's GRU input has no such column (sb3_hypernet/recurrent.py HistoryEncoder). (The "
        "reference's own environment appends a done flag to the state instead, which the harness's 2-wide stub "
        "leaves out: see the init line on the state width)"
    ),
    "inner-boundary": (
        "at an inner-episode boundary our wrapper shows the next episode's first state; the reference's environment "
        "shows the terminal state and is acted on once more. The compared inputs use ours on both sides; "
        "this line measures what the reference's own boundary observation changes in its latents"
    ),
    "running-normaliser": (
        "our RunningNormalizer (sb3_hypernet/heads.py): population variance of each batch, count from 0, output "
        "clipped to +-10; the reference's RunningMeanStd (utils/helpers.py): unbiased batch variance, count from "
        "1e-4, no clipping"
    ),
    "normaliser-timing": (
        "our normaliser merges a rollout's states when the next rollout starts, so the update sees the statistics the "
        "rollout acted with; the reference merges them just before the PPO update (algorithms/ppo.py update -> "
        "update_rms), so its update already normalises with the rollout's own states"
    ),
    "sequence-cut": (
        "RecurrentPPO cuts the rollout into sequences that restart from stored (detached) GRU states; the reference "
        "re-runs the GRU over the whole rollout for every minibatch, so its gradient flows through the "
        "whole history. Forward values are the same; the encoder gradient is truncated at the cut"
    ),
    "kl-subsample-index": (
        "with subsampled ELBO terms the reference selects KL terms with kl_divergences[elbo_indices] (vae.py "
        "compute_kl_loss), indexing the time axis only, so each drawn index adds the KL of every meta-episode of the "
        "batch: B times the KL it means (B = vae_batch_num_trajs, 10 on MuJoCo). Ours sums each meta-episode's own "
        "drawn terms; kl_weight times B reproduces the reference's effective weight"
    ),
    "minibatch-composition": (
        "with minibatch_sampling='sequences' (RecurrentPPO's minibatches) a minibatch is batch_size consecutive steps "
        "of whole env sequences, so it holds the steps of a few envs' tasks (5 of 16 on the grids); the reference's "
        "feed_forward_generator draws batch_size steps at random from every env, as minibatch_sampling='steps' does "
        "(MetaRecurrentPPO's docstring; README, Differences: recurrent minibatches)"
    ),
    "reward-normaliser-order": (
        "SB3's VecNormalize adds a meta-episode's final discounted return to the reward statistics and then zeroes it; "
        "the reference's zeroes it first: its return variance runs about 2% lower (normalised rewards within 1.2%). "
        "We keep SB3's VecNormalize, which rl_zoo3 builds"
    ),
    "state-done-flag": (
        "the reference's VariBadWrapper appends the inner episode's done flag to the state (GridNavi: (x, y, done)), "
        "so its state embeddings have one more input; ours read the inner observation, and the flag reaches the "
        "policy through the encoder's episode_done input"
    ),
    "advantage-normalisation": (
        "SB3 normalises advantages per minibatch, (A - mean) / (std + 1e-8); the reference over the whole batch, "
        "(A - mean) / (std + 1e-5). Here the batch is one minibatch, so only the epsilon differs"
    ),
}

#: Relative and absolute float32 tolerances: |ours - reference| <= ATOL + RTOL * max|reference| (per tensor).
RTOL, ATOL = 1e-4, 1e-6
#: The VAE's reconstruction terms are sums of thousands of terms, exact to float32 rounding (~1e-7 relative): a tighter
#: relative tolerance, so that the first-latent difference (1e-5 relative) does not pass as equal.
VAE_RTOL = 1e-6
#: The VAE's gradients sum over every (latent, transition) pair (160,000 per meta-episode on Walker): float32
#: accumulation reaches 1e-4 of the largest element there.
VAE_GRAD_RTOL = 1e-3

EQUAL, DELIBERATE_STATUS, UNEXPLAINED = "equal", "deliberate", "UNEXPLAINED"


# ------------------------------------------------------------------------------------------------------------------
# Result lines
# ------------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Result:
    """One compared quantity of one method.

    :param method: method name as in the paper (``RNN+HN``)
    :param quantity: what is compared, and under which setting
    :param status: ``equal``, ``deliberate`` or ``UNEXPLAINED``
    :param diff: max abs difference (of the worst tensor)
    :param tol: the tolerance it was held to
    :param keys: the :data:`DELIBERATE` keys that explain a difference
    :param note: details (for an unexplained difference: where it comes from in each code base)
    """

    method: str
    quantity: str
    status: str
    diff: float
    tol: float
    keys: tuple[str, ...] = ()
    note: str = ""

    def __post_init__(self) -> None:
        if self.status not in (EQUAL, DELIBERATE_STATUS, UNEXPLAINED):
            raise ValueError(f"unknown status {self.status!r}")
        unknown = [key for key in self.keys if key not in DELIBERATE]
        if unknown:
            raise KeyError(f"deliberate-difference keys not in DELIBERATE: {', '.join(unknown)}")
        if self.status == DELIBERATE_STATUS and not self.keys:
            raise ValueError("a deliberate difference must name its DELIBERATE key")


def format_result(result: Result) -> str:
    """One output line: method, quantity, verdict."""
    head = f"{result.method:<10} {result.quantity:<58}"
    if result.status == EQUAL:
        text = f"equal (max abs diff {result.diff:.1e}, tol {result.tol:.1e})"
    elif result.status == DELIBERATE_STATUS:
        text = f"differs by {result.diff:.1e}: deliberate [{', '.join(result.keys)}]"
    elif math.isinf(result.diff):
        text = "UNEXPLAINED: present on one side only"
    else:
        text = f"UNEXPLAINED: differs by {result.diff:.1e} (tol {result.tol:.1e})"
    if result.note:
        text += f" -- {result.note}"
    return f"{head} {text}"


def summary_line(results: Sequence[Result]) -> str:
    """``parity: K of N equal, D deliberate, U unexplained``."""
    counts = {status: sum(r.status == status for r in results) for status in (EQUAL, DELIBERATE_STATUS, UNEXPLAINED)}
    return (
        f"parity: {counts[EQUAL]} of {len(results)} equal, {counts[DELIBERATE_STATUS]} deliberate, "
        f"{counts[UNEXPLAINED]} unexplained"
    )


def deliberate_table() -> list[str]:
    """The table of deliberate differences, one ``key: explanation`` line each."""
    return [f"{key}: {text}" for key, text in DELIBERATE.items()]


def max_abs_diff(ours: th.Tensor, ref: th.Tensor, rtol: float = RTOL) -> tuple[float, float]:
    """(max |ours - ref|, tolerance for ref's scale); shapes must agree."""
    ours, ref = ours.detach().double(), ref.detach().double()
    if ours.shape != ref.shape:
        raise ValueError(f"shape mismatch: ours {tuple(ours.shape)}, reference {tuple(ref.shape)}")
    scale = float(ref.abs().max()) if ref.numel() else 0.0
    return (float((ours - ref).abs().max()) if ref.numel() else 0.0), ATOL + rtol * scale


class Report:
    """Collects and prints the result lines."""

    def __init__(self) -> None:
        self.results: list[Result] = []
        #: Reference settings replaced by ours (searched or tuned hyperparameters), one line each.
        self.settings: list[str] = []

    def add(self, result: Result) -> Result:
        self.results.append(result)
        print(format_result(result), flush=True)
        return result

    def compare(
        self,
        method: str,
        quantity: str,
        pairs: Sequence[tuple[th.Tensor, th.Tensor]] | tuple[th.Tensor, th.Tensor],
        keys: Sequence[str] = (),
        unexplained: str = "",
        note: str = "",
        rtol: float = RTOL,
    ) -> Result:
        """Compare (ours, reference) tensor pairs; the worst pair decides. A difference is deliberate when ``keys``
        are given, else UNEXPLAINED, explained by the ``unexplained`` text (where it comes from); ``note`` is shown
        in every case."""
        if isinstance(pairs, tuple) and len(pairs) == 2 and isinstance(pairs[0], th.Tensor):
            pairs = [pairs]
        worst, worst_tol, within = 0.0, ATOL, True
        for ours, ref in pairs:
            diff, tol = max_abs_diff(ours, ref, rtol)
            if diff > tol:
                within = False
            if (diff / tol) >= (worst / worst_tol):
                worst, worst_tol = diff, tol
        if within:
            return self.add(Result(method, quantity, EQUAL, worst, worst_tol, note=note))
        if keys:
            return self.add(Result(method, quantity, DELIBERATE_STATUS, worst, worst_tol, tuple(keys), note))
        text = "; ".join(part for part in (note, unexplained) if part)
        return self.add(Result(method, quantity, UNEXPLAINED, worst, worst_tol, note=text))


# ------------------------------------------------------------------------------------------------------------------
# The reference: checkout check, stubs, import
# ------------------------------------------------------------------------------------------------------------------
def reference_problems(path: Path) -> list[str]:
    """Why ``path`` is not a usable checkout of jacooba/hyper (empty when it is one)."""
    if not path.is_dir():
        return [f"{path} is not a folder"]
    missing = [name for name in REFERENCE_FILES if not (path / name).is_file()]
    if missing:
        return [f"missing {', '.join(missing)}"]
    marker_file, marker = REFERENCE_MARKER
    if marker not in (path / marker_file).read_text(errors="replace"):
        return [f"{marker_file} has no {marker!r} (a VariBAD checkout, not jacooba/hyper?)"]
    return []


class StubEnv:
    """What the reference asks of an environment outside the environment itself: sizes, and on the grids the map
    from a cell (x, y) to the index of its reward head, x * size + y (the reference's cell numbering, its
    environments/navigation/gridworld.py task_to_id). Built from our environment's spaces."""

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Space,
        task_dim: int,
        episode_steps: int,
        grid_size: int | None = None,
    ):
        self.observation_space = observation_space
        self.action_space = action_space
        self.task_dim = task_dim
        self._max_episode_steps = episode_steps
        self.grid_size = grid_size
        cells = grid_size * grid_size if grid_size else 0
        self.num_states = self.num_tasks = self.belief_dim = cells

    def task_to_id(self, cells: Any) -> th.Tensor:
        if self.grid_size is None:
            raise RuntimeError("task_to_id is defined for grid environments only")
        cells = th.as_tensor(np.asarray(cells) if not isinstance(cells, th.Tensor) else cells).long()
        return cells[..., 0] * self.grid_size + cells[..., 1]


def gridnavi_stub(state_width: int = 2) -> StubEnv:
    """The reference's GridNavi-v0 (5 x 5 cells, 15 steps per episode), as our GridNavi-v0 is: the state (x, y). The
    reference's own environment shows (x, y, done flag) (``state_width=3``): its VariBadWrapper appends the inner
    episode's done flag to the state whenever a task has several episodes (environments/wrappers.py)."""
    return StubEnv(spaces.Box(0.0, 4.0, (state_width,), np.float32), spaces.Discrete(5), 2, 15, grid_size=5)


#: Environments the stubbed ``gym.make`` can build, by the reference's id (only sizes and cell numbers are used);
#: a comparison registers the stub of its environment here before building the reference's modules.
STUB_ENVS: dict[str, Callable[[], Any]] = {"GridNavi-v0": gridnavi_stub}


def _stub_gym_make(env_id: str, **kwargs: Any) -> Any:
    if env_id not in STUB_ENVS:
        raise RuntimeError(f"the parity harness does not build reference environments; asked for {env_id!r}")
    return STUB_ENVS[env_id]()


def _stub_gym() -> types.ModuleType:
    """A ``gym`` module with what the compared reference modules touch: ``make`` (for the stub envs) and ``spaces``
    (gymnasium's, whose class names the reference checks)."""
    gym = types.ModuleType("gym")
    gym.make = _stub_gym_make
    gym.spaces = spaces
    return gym


def _stub_distutils() -> dict[str, types.ModuleType]:
    """``distutils.util.strtobool`` for Pythons without distutils (3.12+); the reference's argument parsers use it."""
    with contextlib.suppress(ImportError):
        importlib.import_module("distutils.util")
        return {}

    def strtobool(value: str) -> int:
        value = value.lower()
        if value in ("y", "yes", "t", "true", "on", "1"):
            return 1
        if value in ("n", "no", "f", "false", "off", "0"):
            return 0
        raise ValueError(f"invalid truth value {value!r}")

    distutils, util = types.ModuleType("distutils"), types.ModuleType("distutils.util")
    util.strtobool = strtobool
    distutils.util = util
    return {"distutils": distutils, "distutils.util": util}


class _DistributionPatches:
    """The reference's ``models/policy.py`` changes ``torch.distributions.Categorical``/``Normal`` when imported
    (``sample`` keeps a dimension, ``Normal.entropy`` sums over actions, and ``log_probs``/``mode`` are added); SB3's
    distributions, which wrap the same classes, would then compute wrong entropies. The harness keeps torch's own
    methods installed and lends the reference's only while reference code runs (:meth:`active`)."""

    NAMES = ("sample", "log_probs", "mode", "entropy", "log_prob")
    CLASSES = (th.distributions.Categorical, th.distributions.Normal)
    _MISSING = object()

    def __init__(self) -> None:
        self.original = self._snapshot()
        self.patched: dict[tuple[type, str], Any] = {}

    def _snapshot(self) -> dict[tuple[type, str], Any]:
        return {(cls, name): cls.__dict__.get(name, self._MISSING) for cls in self.CLASSES for name in self.NAMES}

    def _install(self, values: dict[tuple[type, str], Any]) -> None:
        for (cls, name), value in values.items():
            if value is self._MISSING:
                if name in cls.__dict__:
                    delattr(cls, name)
            else:
                setattr(cls, name, value)

    def capture_and_restore(self) -> None:
        """After importing the reference: remember its patches and put torch's methods back."""
        self.patched = self._snapshot()
        self._install(self.original)

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        self._install(self.patched)
        try:
            yield
        finally:
            self._install(self.original)


@dataclasses.dataclass
class Reference:
    """The imported reference modules."""

    path: Path
    helpers: types.ModuleType
    encoder: types.ModuleType
    policy: types.ModuleType
    decoder: types.ModuleType
    vae: types.ModuleType
    ppo: types.ModuleType
    online_storage: types.ModuleType
    vec_normalize: types.ModuleType
    default_conf: types.ModuleType
    configs: dict[str, types.ModuleType]
    models: types.ModuleType
    all_envs: types.ModuleType
    distributions: _DistributionPatches
    commit: str


def load_reference(path: Path) -> Reference:
    """Import the compared reference modules from ``path`` with the stubs in place, then take the reference's
    top-level names out of ``sys.modules`` again (our code never sees them)."""
    path = path.resolve()
    saved = {name: sys.modules.pop(name) for name in list(sys.modules) if name.split(".")[0] in REFERENCE_TOP_LEVEL}
    stubs = {"gym": _stub_gym(), **_stub_distutils()}
    saved_stubs = {name: sys.modules.get(name) for name in stubs}
    sys.modules.update(stubs)
    # The reference's folders have no __init__.py (namespace packages), which any regular package of the same name
    # on sys.path would shadow: register them as packages rooted in the checkout first.
    # ``environments`` and ``environments.env_utils`` too: the former's __init__.py registers every environment in gym's
    # registry (which the stub has not), and only the reward normaliser below it is imported.
    for package in (
        "models",
        "config",
        "config.gridworld",
        "config.mujoco",
        "algorithms",
        "experiment_sets",
        "environments",
        "environments.env_utils",
    ):
        module = types.ModuleType(package)
        module.__path__ = [str(path / package.replace(".", "/"))]
        sys.modules[package] = module
    sys.path.insert(0, str(path))
    patches = _DistributionPatches()
    loaded: dict[str, types.ModuleType] = {}
    try:
        for name in (
            "utils.helpers",
            "models.encoder",
            "models.policy",
            "models.decoder",
            "utils.storage_vae",
            "vae",
            "algorithms.ppo",
            "algorithms.online_storage",
            "environments.env_utils.vec_env.vec_normalize",
            "config.default_conf",
            *CONFIG_MODULES,
            "experiment_sets.models",
            "experiment_sets.all_envs",
        ):
            importlib.import_module(name)
        patches.capture_and_restore()
    finally:
        sys.path.remove(str(path))
        for name in [n for n in sys.modules if n.split(".")[0] in REFERENCE_TOP_LEVEL]:
            loaded[name] = sys.modules.pop(name)
        for name, module in saved_stubs.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        sys.modules.update(saved)
    # Everything on the CPU (each reference module picks CUDA whenever it sees it, in a module-level `device`).
    for module in loaded.values():
        if isinstance(getattr(module, "device", None), th.device):
            module.device = th.device("cpu")
    # The reference's make_env builds its (gym 0.17) environments; the compared modules need only their sizes.
    loaded["utils.helpers"].make_env = lambda args, **kwargs: (_stub_gym_make(args.env_name), "gym")
    modules = loaded
    return Reference(
        path=path,
        helpers=modules["utils.helpers"],
        encoder=modules["models.encoder"],
        policy=modules["models.policy"],
        decoder=modules["models.decoder"],
        vae=modules["vae"],
        ppo=modules["algorithms.ppo"],
        online_storage=modules["algorithms.online_storage"],
        vec_normalize=modules["environments.env_utils.vec_env.vec_normalize"],
        default_conf=modules["config.default_conf"],
        configs={name: modules[name] for name in CONFIG_MODULES},
        models=modules["experiment_sets.models"],
        all_envs=modules["experiment_sets.all_envs"],
        distributions=patches,
        commit=_git_commit(path),
    )


def _git_commit(path: Path) -> str:
    """The checkout's commit (or a note when it is not a git checkout), and a digest of the files the harness reads,
    which names the compared code either way."""
    digest = hashlib.sha256()
    for name in (*REFERENCE_FILES, "models/aggregator.py"):
        digest.update((path / name).read_bytes())
    files = f"sha256 of the imported files {digest.hexdigest()[:16]}"
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        return f"{out.stdout.strip()}, {files}"
    except (OSError, subprocess.CalledProcessError):
        return f"(not a git checkout), {files}"


# ------------------------------------------------------------------------------------------------------------------
# Reference settings
# ------------------------------------------------------------------------------------------------------------------
def experiment_set(ref: Reference, set_name: str) -> dict[str, Any]:
    """An experiment set of the reference's ``experiment_sets/all_envs.py`` by name (``grid``, ``walker``)."""
    sets = [*ref.all_envs.GPU_EXPERIMENT_SETS, *ref.all_envs.CPU_EXPERIMENT_SETS]
    for candidate in sets:
        if candidate["set_name"] == set_name:
            return candidate
    raise KeyError(f"no experiment set {set_name!r} in {ref.path}/experiment_sets/all_envs.py")


def reference_args(
    ref: Reference, config: types.ModuleType, set_name: str, model: str, overrides: dict[str, Any], env: Any
) -> argparse.Namespace:
    """The reference's ``args`` for one experiment, assembled as its launcher does: the set's shared arguments, then
    the model's dictionary (``experiment_sets/models.py``), then ``overrides`` (the searched hyperparameters, set to
    ours), parsed by the environment's config file with the defaults of ``config/default_conf.py`` for the rest;
    then what its main script and meta-learner derive from the environment."""
    settings = {**experiment_set(ref, set_name)["shared_arguments"], **getattr(ref.models, model), **overrides}
    command_line: list[str] = []
    for key, value in settings.items():
        if key == "env-type":  # the main script's own option (which config file to use)
            continue
        # The launcher joins "--key value" into one shell string, so "256 128" becomes two words.
        command_line += [f"--{key}", *str(value).split()]
    args, unknown = config.get_args(command_line)
    for key, value in vars(ref.default_conf.get_args(unknown)).items():
        if not hasattr(args, key):
            setattr(args, key, value)
    # The reference main script's clean-up of decoder flags.
    if args.disable_decoder and not args.rlloss_through_encoder:
        args.decode_reward = args.decode_state = args.decode_task = False
    # What the meta-learner reads off the environment.
    args.max_trajectory_len = env._max_episode_steps * args.max_rollouts_per_task
    args.state_dim = env.observation_space.shape[0]
    args.task_dim = env.task_dim
    args.belief_dim = env.belief_dim
    args.num_states = env.num_states
    args.action_space = env.action_space
    args.action_dim = 1 if isinstance(env.action_space, spaces.Discrete) else env.action_space.shape[0]
    # The VAE's trajectory buffer is allocated up front (100,000 meta-episodes on the grids) and never compared.
    args.size_vae_buffer = 1
    return args


class _NullLogger:
    """The reference VAE's logger (nothing is logged here)."""

    def add(self, *args: Any, **kwargs: Any) -> None:
        pass


@dataclasses.dataclass
class ReferenceModel:
    """A reference model: its args, encoder (inside the VAE), policy network and PPO."""

    args: argparse.Namespace
    vae: Any
    encoder: th.nn.Module
    policy: th.nn.Module
    ppo: Any

    def modules(self) -> dict[str, th.nn.Module]:
        """The reference's modules by the prefix used in the parameter tables."""
        out = {"encoder": self.encoder, "policy": self.policy}
        for name in ("reward_decoder", "state_decoder", "task_decoder"):
            decoder = getattr(self.vae, name, None)
            if decoder is not None:
                out[name] = decoder
        return out

    def parameter(self, qualified: str) -> th.nn.Parameter:
        prefix, _, name = qualified.partition(".")
        return dict(self.modules()[prefix].named_parameters())[name]


def build_reference_model(ref: Reference, args: argparse.Namespace, env: Any) -> ReferenceModel:
    """Encoder, decoders, policy network and PPO, built as the reference's meta-learner builds them."""
    action_space = env.action_space
    low = getattr(action_space, "low", None)
    high = getattr(action_space, "high", None)
    policy = ref.policy.Policy(
        args=args,
        pass_state_to_policy=args.pass_state_to_policy,
        pass_latent_to_policy=args.pass_latent_to_policy,
        pass_belief_to_policy=args.pass_belief_to_policy,
        pass_task_to_policy=args.pass_task_to_policy,
        dim_state=args.state_dim,
        dim_latent=args.latent_dim * 2,
        dim_belief=args.belief_dim,
        dim_task=args.task_dim,
        hidden_layers=args.policy_layers,
        activation_function=args.policy_activation_function,
        policy_initialisation=args.policy_initialisation,
        action_space=action_space,
        init_std=args.policy_init_std,
        norm_actions_of_policy=args.norm_actions_of_policy,
        action_low=low,
        action_high=high,
    )
    # The task decoder predicts the learned target when there is one (metalearner.py: the task embedding's size, or
    # the number of generated base-network parameters).
    decoder_dim = None
    if args.ti_coeff is not None:
        decoder_dim = policy.task_in_dim if args.ti_target == "task" else policy.get_bn_param_dim()
    vae = ref.vae.VaribadVAE(args, _NullLogger(), lambda: 0, task_decoder_dim=decoder_dim)
    ppo = ref.ppo.PPO(
        args,
        policy,
        args.policy_value_loss_coef,
        args.policy_entropy_coef,
        policy_optimiser=args.policy_optimiser,
        policy_anneal_lr=False,
        train_steps=1,
        lr=args.lr_policy,
        eps=args.policy_eps,
        ppo_epoch=args.ppo_num_epochs,
        num_mini_batch=args.ppo_num_minibatch,
        use_huber_loss=args.ppo_use_huberloss,
        use_clipped_value_loss=args.ppo_use_clipped_value_loss,
        clip_param=args.ppo_clip_param,
    )
    ppo.set_vae_optimizer(vae.optimiser_vae)
    return ReferenceModel(args=args, vae=vae, encoder=vae.encoder, policy=policy, ppo=ppo)


# ------------------------------------------------------------------------------------------------------------------
# The batch: meta-episodes of our environments
# ------------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class MetaEpisodes:
    """B meta-episodes of T steps, time-major (T, B, ...). Step t: the policy sees ``obs[t]`` (our Dict entries),
    takes ``actions[t]``, gets ``rewards[t]`` and then sees ``next_obs[t]`` (at an inner-episode boundary the next
    episode's first observation, as our wrapper shows it); ``terminal_next[t]`` is the inner env's own next state
    (at a boundary the inner episode's terminal state), what both code bases decode rewards and states at;
    ``final_obs`` (B, ...) are our Dict entries of the observation after the last step."""

    obs: dict[str, th.Tensor]
    actions: th.Tensor
    rewards: th.Tensor
    next_obs: th.Tensor
    terminal_next: th.Tensor
    final_obs: dict[str, th.Tensor]

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.actions.shape[:2])  # type: ignore[return-value]

    def reference_actions(self) -> th.Tensor:
        """Actions as the reference stores them: (T, B, 1) float indices for discrete actions, else (T, B, dim)."""
        return self.actions.float().unsqueeze(-1) if self.actions.dim() == 2 else self.actions.float()


def collect_meta_episodes(env_id: str, n: int, seed: int) -> MetaEpisodes:
    """``n`` meta-episodes of our ``env_id`` (task exposed) with seeded random actions; on the grids biased towards
    up and right so that goals are found now and then (rewards of both signs)."""
    import gymnasium

    import envs  # noqa: F401  (registers the ids)
    from sb3_hypernet.common.task import INNER_TERMINAL_KEY

    env = gymnasium.make(env_id, expose_task=True)
    rng = np.random.default_rng(seed)
    discrete = isinstance(env.action_space, spaces.Discrete)
    env.action_space.seed(seed)
    episodes, finals = [], []
    for index in range(n):
        obs, _ = env.reset(seed=seed + index)
        steps, done = [], False
        while not done:
            if discrete:
                action: Any = int(rng.choice(5, p=[0.1, 0.3, 0.3, 0.15, 0.15]))
            else:
                action = env.action_space.sample()
            next_obs, reward, terminated, truncated, info = env.step(action)
            terminal = info.get(INNER_TERMINAL_KEY, next_obs["obs"])
            steps.append((obs, action, float(reward), next_obs["obs"], terminal))
            obs, done = next_obs, terminated or truncated
        episodes.append(steps)
        finals.append(obs)
    env.close()
    if len({len(steps) for steps in episodes}) != 1:
        raise RuntimeError(f"{env_id} meta-episodes of different lengths")

    def stack(values: Any) -> th.Tensor:
        return th.as_tensor(np.array(values, dtype=np.float32))

    keys = episodes[0][0][0].keys()
    obs = {key: stack([[s[0][key] for s in steps] for steps in episodes]).transpose(0, 1) for key in keys}
    actions = [[s[1] for s in steps] for steps in episodes]
    return MetaEpisodes(
        obs=obs,
        actions=(th.as_tensor(actions) if discrete else stack(actions)).transpose(0, 1),
        rewards=stack([[[s[2]] for s in steps] for steps in episodes]).transpose(0, 1),
        next_obs=stack([[s[3] for s in steps] for steps in episodes]).transpose(0, 1),
        terminal_next=stack([[s[4] for s in steps] for steps in episodes]).transpose(0, 1),
        final_obs={key: stack([final[key] for final in finals]) for key in keys},
    )


def synthetic_meta_episodes(env_id: str, n: int, seed: int) -> MetaEpisodes:
    """``n`` meta-episodes with the shapes and layout of our ``env_id`` (all inner episodes of full length), drawn
    at random (seeded): on MuJoCo random actions make the walker fall and end inner episodes early, and the
    reference's VAE loss takes meta-episodes of one length only (without subsampling). Observations, rewards and
    terminal states N(0, 1), actions U(-1, 1), the task from its space."""
    import gymnasium

    import envs  # noqa: F401  (registers the ids)

    env = gymnasium.make(env_id, expose_task=True)
    n_episodes = env.get_wrapper_attr("n_episodes")
    episode_steps = gymnasium.spec(gymnasium.spec(env_id).kwargs["task_env_id"]).max_episode_steps
    obs_dim = env.observation_space["obs"].shape[0]
    action_dim = env.action_space.shape[0]
    task_space = env.observation_space["task"]
    env.close()
    t_steps = n_episodes * episode_steps
    rng = np.random.default_rng(seed)
    normal = lambda *shape: th.as_tensor(rng.standard_normal(shape), dtype=th.float32)  # noqa: E731
    states = normal(t_steps + 1, n, obs_dim)  # o_0 .. o_T as the policy sees them
    terminal = states[1:].clone()
    boundaries = th.arange(1, t_steps + 1) % episode_steps == 0
    terminal[boundaries[:]] = normal(int(boundaries.sum()), n, obs_dim)  # the inner episode's last state
    terminal[-1] = states[-1]
    actions = th.as_tensor(rng.uniform(-1.0, 1.0, (t_steps, n, action_dim)), dtype=th.float32)
    rewards = normal(t_steps, n, 1)
    low, high = np.maximum(task_space.low, -1.0), np.minimum(task_space.high, 1.0)
    task = th.as_tensor(rng.uniform(low, high, (n, *task_space.shape)), dtype=th.float32)
    done = th.zeros(t_steps + 1, n, 1)
    done[th.arange(t_steps + 1) % episode_steps == 0] = 1.0
    done[0] = 0.0
    previous_action = th.cat([th.zeros(1, n, action_dim), actions])
    previous_reward = th.cat([th.zeros(1, n, 1), rewards])
    every = {
        "obs": states,
        "prev_action": previous_action,
        "prev_reward": previous_reward,
        "episode_done": done,
        "task": task[None].expand(t_steps + 1, *task.shape).clone(),
    }
    return MetaEpisodes(
        obs={key: value[:-1] for key, value in every.items()},
        actions=actions,
        rewards=rewards,
        next_obs=states[1:],
        terminal_next=terminal,
        final_obs={key: value[-1] for key, value in every.items()},
    )


def flatten_steps(x: th.Tensor) -> th.Tensor:
    """(T, B, ...) -> (B * T, ...), sequence-major as sb3-contrib lays out a batch of sequences."""
    return x.transpose(0, 1).reshape(-1, *x.shape[2:])


def our_obs(episodes: MetaEpisodes, first: int, zero_done: bool, keys: Sequence[str]) -> dict[str, th.Tensor]:
    """Our observations (the entries ``keys`` of the policy's space) of steps ``first..T-1`` as a flat batch of B
    sequences; ``zero_done`` feeds episode_done = 0 (what the reference's encoder, which has no such input, amounts
    to)."""
    obs = {key: flatten_steps(episodes.obs[key][first:]) for key in keys}
    if zero_done:
        obs["episode_done"] = th.zeros_like(obs["episode_done"])
    return obs


# ------------------------------------------------------------------------------------------------------------------
# Our model, and the table that maps its parameters onto the reference's
# ------------------------------------------------------------------------------------------------------------------
def perturb_(module: th.nn.Module, seed: int, relative: float = 0.05) -> None:
    """Add seeded noise to every parameter (``relative`` times its mean magnitude, at least 1e-2): at the zoo's
    initialisation some paths are exactly zero (Bias-HyperInit's weight heads), which would make their gradients
    agree trivially."""
    generator = th.Generator().manual_seed(seed)
    with th.no_grad():
        for parameter in module.parameters():
            scale = float(parameter.abs().mean().clamp(min=1e-2)) * relative
            parameter.add_(scale * th.randn(parameter.shape, generator=generator))


@dataclasses.dataclass(frozen=True)
class ParamRole:
    """One reference parameter and where it comes from in ours: ``ref = take(ours)``. ``take`` only selects and
    reshapes, so it maps gradients the same way.

    :param group: what the parameter belongs to (encoder, latent embedding, state embedding, actor, critic, ...)
    :param ours: our parameter's name in the policy
    :param ref: the reference parameter as ``<module>.<name>`` (module: encoder, policy, reward_decoder, ...)
    :param take: ours -> reference layout
    """

    group: str
    ours: str
    ref: str
    take: Callable[[th.Tensor], th.Tensor] = lambda tensor: tensor


def linear_roles(group: str, ours: str, ref: str) -> list[ParamRole]:
    """An ``nn.Linear`` on both sides (weight and bias)."""
    return [ParamRole(group, f"{ours}.{name}", f"{ref}.{name}") for name in ("weight", "bias")]


def encoder_roles(obs_embedding: int, action_embedding: int, reward_embedding: int) -> list[ParamRole]:
    """Our HistoryEncoder onto the reference's RNNEncoder (its Aggregator: a GRU, then one linear layer)."""
    s, a, r = obs_embedding, action_embedding, reward_embedding

    def gru_columns(weight: th.Tensor) -> th.Tensor:
        # Our GRU input is [state s | action a | reward r | episode_done 1], the reference's [action | reward |
        # state] (models/encoder.py forward: cat(ha, hr, hs_next)); our episode_done column has no counterpart.
        return th.cat([weight[:, s : s + a], weight[:, s + a : s + a + r], weight[:, :s]], dim=1)

    roles = linear_roles("encoder", "lstm_actor.obs_embedding.0", "encoder.state_encoder.fc")
    if reward_embedding:
        roles += linear_roles("encoder", "lstm_actor.reward_embedding.0", "encoder.reward_encoder.fc")
    if action_embedding:
        roles += linear_roles("encoder", "lstm_actor.action_embedding.0", "encoder.action_encoder.fc")
    roles.append(ParamRole("encoder", "lstm_actor.gru.weight_ih_l0", "encoder.agg.encoder.weight_ih_l0", gru_columns))
    roles += [
        ParamRole("encoder", f"lstm_actor.gru.{name}", f"encoder.agg.encoder.{name}")
        for name in ("weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    ]
    roles += linear_roles("encoder", "lstm_actor.to_latent", "encoder.agg.fc_after_agg.0")
    return roles


def _weight_head(weight: th.Tensor) -> th.Tensor:
    """Our generated layer's A (out, in + 1, cond + 1) -> the reference's weight-generating head's weight
    (out * in, cond): its output, reshaped to (out, in) row-major, is the base weight (models/policy.py
    forward_hyper)."""
    out, in_, cond = weight.shape[0], weight.shape[1] - 1, weight.shape[2] - 1
    return weight[:, :in_, :cond].reshape(out * in_, cond)


def _weight_head_bias(weight: th.Tensor) -> th.Tensor:
    out, in_, cond = weight.shape[0], weight.shape[1] - 1, weight.shape[2] - 1
    return weight[:, :in_, cond].reshape(out * in_)


def _bias_head(weight: th.Tensor) -> th.Tensor:
    in_, cond = weight.shape[1] - 1, weight.shape[2] - 1
    return weight[:, in_, :cond]


def _bias_head_bias(weight: th.Tensor) -> th.Tensor:
    in_, cond = weight.shape[1] - 1, weight.shape[2] - 1
    return weight[:, in_, cond]


def generated_layer_roles(group: str, ours: str, weight_head: str, bias_head: str) -> list[ParamRole]:
    """One of our GeneratedLinear layers (one tensor A) onto the reference's two hypernetwork heads (nn.Linear on
    the latent embedding: one generating the base weight, one the base bias)."""
    return [
        ParamRole(group, f"{ours}.weight", f"{weight_head}.weight", _weight_head),
        ParamRole(group, f"{ours}.weight", f"{weight_head}.bias", _weight_head_bias),
        ParamRole(group, f"{ours}.weight", f"{bias_head}.weight", _bias_head),
        ParamRole(group, f"{ours}.weight", f"{bias_head}.bias", _bias_head_bias),
    ]


def policy_roles(policy: Any, prefix: str = "mlp_extractor") -> list[ParamRole]:
    """Our head (plain MLPs or hypernetwork) and output layers onto the reference's Policy."""
    head = policy.mlp_extractor
    roles: list[ParamRole] = []
    if not isinstance(head.latent_embedding, th.nn.Identity):
        roles += linear_roles("latent embedding", f"{prefix}.latent_embedding.0", "policy.latent_encoder.fc")
    if hasattr(head, "state_embedding"):
        roles += linear_roles("state embedding", f"{prefix}.state_embedding.0", "policy.state_encoder.fc")
    gaussian = isinstance(policy.action_space, spaces.Box)
    if head.generates_outputs:
        for side, ours, ref in (("actor", "actor", "actor"), ("critic", "critic", "critic")):
            layers = getattr(head, ours).layers
            for index in range(len(layers) - 1):
                roles += generated_layer_roles(
                    side,
                    f"{prefix}.{ours}.layers.{index}",
                    f"policy.hyper_final_to_{ref}_weight.{index}",
                    f"policy.hyper_final_to_{ref}_bias.{index}",
                )
            roles += generated_layer_roles(
                side,
                f"{prefix}.{ours}.layers.{len(layers) - 1}",
                f"policy.hyper_final_to_{ref}_linear_weight",
                f"policy.hyper_final_to_{ref}_linear_bias",
            )
    else:
        for side, ours, ref in (("actor", "policy_net", "actor_layers"), ("critic", "value_net", "critic_layers")):
            linears = [m for m in getattr(head, ours) if isinstance(m, th.nn.Linear)]
            index_of = {id(m): i for i, m in enumerate(getattr(head, ours))}
            for position, layer in enumerate(linears):
                roles += linear_roles(side, f"{prefix}.{ours}.{index_of[id(layer)]}", f"policy.{ref}.{position}")
        roles += linear_roles("actor", "action_net", "policy.dist.fc_mean" if gaussian else "policy.dist.linear")
        roles += linear_roles("critic", "value_net", "policy.critic_linear")
    if gaussian:
        roles.append(ParamRole("actor", "log_std", "policy.dist.logstd"))
    return roles


def check_coverage(
    roles: Sequence[ParamRole],
    ours: th.nn.Module,
    ref: ReferenceModel,
    ours_unmapped: set[str],
    ref_unmapped: set[str] = frozenset(),  # type: ignore[assignment]
) -> None:
    """Every reference parameter is set exactly once (but those of the modules ``ref_unmapped``, which have no
    counterpart), every parameter of ours is used (or listed in ``ours_unmapped``), and the shapes fit: a wrong
    table is an error, not a silent partial comparison."""
    ref_names = [role.ref for role in roles]
    all_ref = {
        f"{prefix}.{name}"
        for prefix, module in ref.modules().items()
        if prefix not in ref_unmapped
        for name, _ in module.named_parameters()
    }
    duplicated = sorted({name for name in ref_names if ref_names.count(name) > 1})
    missing_ref = sorted(all_ref - set(ref_names))
    ours_names = {name for name, _ in ours.named_parameters()}
    missing_ours = sorted(ours_names - {role.ours for role in roles} - ours_unmapped)
    unknown = sorted({role.ours for role in roles} - ours_names) + sorted(set(ref_names) - all_ref)
    problems = [
        *(f"reference parameter set twice: {name}" for name in duplicated),
        *(f"reference parameter not mapped: {name}" for name in missing_ref),
        *(f"our parameter not mapped: {name}" for name in missing_ours),
        *(f"no such parameter: {name}" for name in unknown),
    ]
    if not problems:
        parameters = dict(ours.named_parameters())
        for role in roles:
            shape, ref_shape = tuple(role.take(parameters[role.ours]).shape), tuple(ref.parameter(role.ref).shape)
            if shape != ref_shape:
                problems.append(f"{role.ours} -> {role.ref}: shape {shape} vs {ref_shape}")
    if problems:
        raise RuntimeError("parameter table does not fit:\n  " + "\n  ".join(problems))


def copy_into_reference(roles: Sequence[ParamRole], ours: th.nn.Module, ref: ReferenceModel) -> None:
    """Set every reference parameter from ours through the table."""
    parameters = dict(ours.named_parameters())
    with th.no_grad():
        for role in roles:
            ref.parameter(role.ref).copy_(role.take(parameters[role.ours].detach()))


def gradient_pairs(
    roles: Sequence[ParamRole], ours: dict[str, th.Tensor], ref: dict[str, th.Tensor], groups: Sequence[str]
) -> list[tuple[th.Tensor, th.Tensor]]:
    """(our gradient in the reference's layout, reference gradient) for the roles of ``groups``."""
    return [(role.take(ours[role.ours]), ref[role.ref]) for role in roles if role.group in groups]


# ------------------------------------------------------------------------------------------------------------------
# Running both sides
# ------------------------------------------------------------------------------------------------------------------
def zero_state(policy: Any, n_seq: int) -> tuple[th.Tensor, th.Tensor]:
    encoder = policy.history_encoder
    hidden = th.zeros(encoder.num_layers, n_seq, encoder.hidden_size)
    return hidden, hidden.clone()


def sequence_starts(n_seq: int, length: int) -> th.Tensor:
    starts = th.zeros(n_seq, length)
    starts[:, 0] = 1.0
    return starts.reshape(-1)


def our_latents(policy: Any, obs: dict[str, th.Tensor], n_seq: int) -> th.Tensor:
    """Our GRU latent over B whole sequences from the zero state."""
    length = obs["obs"].shape[0] // n_seq
    with th.no_grad():
        _, latent, _ = policy._encode_latent(obs, zero_state(policy, n_seq), sequence_starts(n_seq, length))
    return latent


def our_outputs(policy: Any, obs: dict[str, th.Tensor], actions: th.Tensor, n_seq: int) -> dict[str, th.Tensor]:
    """Our latent, the head's inputs and embeddings, the action distribution and the values, per step."""
    length = obs["obs"].shape[0] // n_seq
    with th.no_grad():
        features, latent, _ = policy._encode_latent(obs, zero_state(policy, n_seq), sequence_starts(n_seq, length))
        condition, state = policy._head_inputs(obs, features, latent)
        head = policy.mlp_extractor
        latent_embedding, state_embedding = head.embed(condition, state)
        latent_pi, latent_vf = head(condition, state)
        distribution = policy._get_action_dist_from_latent(latent_pi)
        out = {
            "latent": latent,
            "condition embedding": latent_embedding,
            "values": policy.value_net(latent_vf).flatten(),
            "log-prob of actions": distribution.log_prob(actions),
            "entropy per step": distribution.entropy(),
        }
        if state_embedding is not None:
            out["state embedding"] = state_embedding
        if isinstance(policy.action_space, spaces.Discrete):
            out["action log-probabilities (logits)"] = distribution.distribution.logits
        else:
            out["action mean"] = distribution.distribution.mean
            out["action std"] = distribution.distribution.stddev
    return out


def reference_latents(ref_model: ReferenceModel, episodes: MetaEpisodes) -> tuple[th.Tensor, th.Tensor]:
    """The reference encoder's (mean, logvar) over whole meta-episodes, prior first: (T + 1, B, latent_dim). Inputs
    per step: (a_t, r_t, s_{t+1}) and the previous state (used only with full transitions)."""
    actions = episodes.actions
    actions = actions.float().unsqueeze(-1) if actions.dim() == 2 else actions.float()
    _, mean, logvar, _ = ref_model.encoder(
        actions=actions,
        states=episodes.next_obs,
        rewards=episodes.rewards,
        prev_states=episodes.obs["obs"],
        hidden_state=None,
        return_prior=True,
        sample=False,
        return_all_hidden=False,
    )
    return mean, logvar


def reference_outputs(
    ref: Reference,
    ref_model: ReferenceModel,
    state: th.Tensor,
    mean: th.Tensor,
    logvar: th.Tensor,
    actions: th.Tensor,
    task: th.Tensor | None = None,
    condition: str = "latent",
) -> dict[str, th.Tensor]:
    """The reference policy's view of the same steps (flat batch): latent it reads, embeddings, distribution, values.
    ``condition``: what the policy is conditioned on, the (embedded) ``latent`` or ``task``; the reference chooses
    by chance and update count (task_chance, task_num_warmup), forced here."""
    args, policy = ref_model.args, ref_model.policy
    latent = ref.helpers.get_latent_for_policy(args, latent_sample=mean, latent_mean=mean, latent_logvar=logvar)
    force = {}
    if args.task_chance is not None:
        force = {"force_task_input": True} if condition == "task" else {"force_latent_input": True}
    with th.no_grad(), ref.distributions.active():
        state_embedding, latent_embedding, _, task_embedding, _, _ = policy.get_encoded_inputs(
            state, latent, None, task
        )
        value, distribution = policy(state, latent, None, task, training=True, update_num=0, **force)
        out = {
            "latent": latent,
            "condition embedding": task_embedding if condition == "task" else latent_embedding,
            "values": value.flatten(),
            "log-prob of actions": distribution.log_probs(actions.reshape(len(actions), -1)).flatten(),
            "entropy per step": distribution.entropy(),
        }
        if state_embedding.numel():
            out["state embedding"] = state_embedding
        if isinstance(args.action_space, spaces.Discrete):
            out["action log-probabilities (logits)"] = distribution.logits
        else:
            out["action mean"] = distribution.mean
            out["action std"] = distribution.stddev.expand_as(distribution.mean)
    return out


def reference_normalise(rms: Any, x: th.Tensor) -> th.Tensor:
    """How the reference's policy normalises an input with its running statistics (models/policy.py
    get_encoded_inputs)."""
    return (x - rms.mean) / th.sqrt(rms.var + 1e-8)


def set_our_statistics(normalizer: Any, rms: Any) -> None:
    """Give our RunningNormalizer the reference's statistics (to compare what comes after the normalisation)."""
    with th.no_grad():
        normalizer.mean.copy_(rms.mean)
        normalizer.var.copy_(rms.var)
        normalizer.count.fill_(float(rms.count))


@dataclasses.dataclass
class PPOTargets:
    """What a PPO minibatch carries besides observations and actions, made up around the current outputs so that
    every branch is taken: ratios outside the clip range on both sides, value errors on both sides of the Huber
    threshold, clipped and unclipped value predictions."""

    old_log_prob: th.Tensor
    old_values: th.Tensor
    returns: th.Tensor
    raw_advantages: th.Tensor

    @classmethod
    def around(cls, log_prob: th.Tensor, values: th.Tensor, seed: int) -> PPOTargets:
        generator = th.Generator().manual_seed(seed)
        noise = lambda: th.randn(values.shape, generator=generator)  # noqa: E731
        return cls(
            old_log_prob=log_prob + 0.1 * noise(),
            old_values=values + 0.1 * noise(),
            returns=values + 1.5 * noise(),
            raw_advantages=0.3 + 2.0 * noise(),
        )

    @property
    def reference_advantages(self) -> th.Tensor:
        """The reference normalises advantages over the whole batch (algorithms/ppo.py update)."""
        advantages = self.raw_advantages
        return (advantages - advantages.mean()) / (advantages.std() + 1e-5)


def our_batch(
    obs: dict[str, th.Tensor],
    actions: th.Tensor,
    targets: PPOTargets,
    advantages: th.Tensor,
    state: tuple[th.Tensor, th.Tensor],
    starts: th.Tensor,
    mask: th.Tensor | None = None,
) -> Any:
    """An sb3-contrib minibatch (sequence-major padded layout) of the same steps."""
    from sb3_contrib.common.recurrent.type_aliases import RecurrentDictRolloutBufferSamples, RNNStates

    return RecurrentDictRolloutBufferSamples(
        observations=obs,
        actions=actions.float().reshape(len(actions), -1),
        old_values=targets.old_values,
        old_log_prob=targets.old_log_prob,
        advantages=advantages,
        returns=targets.returns,
        lstm_states=RNNStates(state, state),
        episode_starts=starts,
        mask=th.ones(len(actions)) if mask is None else mask,
    )


@contextlib.contextmanager
def optimiser_steps_disabled(model: Any) -> Iterator[None]:
    """Run MetaRecurrentPPO._step (zero_grad, backward, clipping) without changing the weights."""
    optimisers = [model.policy.optimizer, *([model.inference_optimizer] if model.inference_optimizer else [])]
    for optimiser in optimisers:
        optimiser.step = lambda *args, **kwargs: None
    try:
        yield
    finally:
        for optimiser in optimisers:
            del optimiser.step


def our_loss_and_gradients(
    model: Any, batch: Any, value_loss: str, max_grad_norm: float, per_module: bool, normalize_advantage: bool = False
) -> tuple[dict[str, th.Tensor], dict[str, th.Tensor]]:
    """Our loss terms on ``batch`` (MetaRecurrentPPO._minibatch_loss) and the gradients after MetaRecurrentPPO._step
    with the given value loss and clipping."""
    saved = (model.value_loss, model.max_grad_norm, model.clip_grad_per_module, model.normalize_advantage)
    model.value_loss, model.max_grad_norm = value_loss, max_grad_norm
    model.clip_grad_per_module, model.normalize_advantage = per_module, normalize_advantage
    try:
        clip_range = model.clip_range(model._current_progress_remaining)
        loss, logged, _ = model._minibatch_loss(batch, clip_range, None)
        with optimiser_steps_disabled(model):
            model._step(loss)
    finally:
        model.value_loss, model.max_grad_norm, model.clip_grad_per_module, model.normalize_advantage = saved
    terms = {
        "policy loss": logged["policy_gradient_loss"],
        "value loss": logged["value_loss"],
        "entropy": -logged["entropy_loss"],
        "total loss": loss.detach(),
        **{f"auxiliary {name[4:]}": value for name, value in logged.items() if name.startswith("aux_")},
    }
    gradients = {
        name: (p.grad.clone() if p.grad is not None else th.zeros_like(p))
        for name, p in model.policy.named_parameters()
    }
    return terms, gradients


def reference_loss_and_gradients(
    ref: Reference, ref_model: ReferenceModel, sample: tuple[Any, ...], max_norm: float | None
) -> tuple[dict[str, th.Tensor], dict[str, th.Tensor]]:
    """The reference's loss terms (algorithms/ppo.py get_loss) and gradients, clipped to ``max_norm`` (unless None)
    as its update clips them: the actor-critic's norm, and the encoder's on its own when the RL loss trains it."""
    args = ref_model.args
    with ref.distributions.active():
        loss, value_loss, action_loss, entropy, *_ = ref_model.ppo.get_loss(
            sample, args.rlloss_through_encoder, ref_model.vae.compute_vae_loss, return_all_losses=True
        )
    loss.backward()
    if max_norm is not None:
        th.nn.utils.clip_grad_norm_(ref_model.policy.parameters(), max_norm)
        if args.rlloss_through_encoder:
            th.nn.utils.clip_grad_norm_(ref_model.encoder.parameters(), max_norm)
    terms = {
        "policy loss": action_loss.detach(),
        "value loss": value_loss.detach(),
        "entropy": entropy.detach(),
        "total loss": loss.detach(),
    }
    gradients = {}
    for prefix, module in ref_model.modules().items():
        for name, p in module.named_parameters():
            gradients[f"{prefix}.{name}"] = p.grad.clone() if p.grad is not None else th.zeros_like(p)
            p.grad = None
    return terms, gradients


def reference_sample(
    state: th.Tensor,
    task: th.Tensor | None,
    actions: th.Tensor,
    mean: th.Tensor,
    logvar: th.Tensor,
    targets: PPOTargets,
) -> tuple[Any, ...]:
    """A minibatch in the reference's layout (algorithms/online_storage.py feed_forward_generator's tuple)."""
    column = lambda x: x.reshape(len(x), -1)  # noqa: E731
    return (
        state,
        None,
        task,
        column(actions),
        mean,
        mean,
        logvar,
        column(targets.old_values),
        column(targets.returns),
        column(targets.old_log_prob),
        column(targets.reference_advantages),
    )


# ------------------------------------------------------------------------------------------------------------------
# Methods
# ------------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """A method: our zoo file and entry, and the reference's model dictionary (``experiment_sets/models.py``),
    experiment set and config file.

    :param family: ``end-to-end`` (RNN, RNN+S, RNN+HN), ``belief`` (VariBAD's VAE: TI Naive ... VI+HN) or ``multi``
    """

    conf: str
    ref_model: str
    family: str
    env_id: str = "GridNavi-v0"
    ref_set: str = "grid"
    ref_config: str = "config.gridworld.args_grid_varibad"


METHODS: dict[str, MethodSpec] = {
    "RNN": MethodSpec("rnn.yml", "RNN", "end-to-end"),
    "RNN+S": MethodSpec("rnn_s.yml", "RNN_S", "end-to-end"),
    "RNN+HN": MethodSpec("rnn_hn.yml", "RNN_HN", "end-to-end"),
    "TI-Naive": MethodSpec("ti_naive.yml", "TI_Naive", "belief"),
    "TI": MethodSpec("ti.yml", "TI_Grid", "belief"),
    "TI++HN": MethodSpec("ti_plus_plus_hn.yml", "TI_pp_HN_Grid", "belief"),
    # The reference defines BI++HN with MuJoCo's 563 pre-training updates only; the count is not a module setting.
    "BI++HN": MethodSpec("bi_plus_plus_hn.yml", "BI_pp_HN", "belief"),
    "Multi+HN": MethodSpec("multi_hn.yml", "Multi_HN", "multi"),
    "VI": MethodSpec("vi.yml", "VI", "belief"),
    "VI+HN": MethodSpec("vi_hn.yml", "VI_HN", "belief"),
    "VI-Walker": MethodSpec(
        "vi.yml", "VI", "belief", "WalkerRandParams-v0", "walker", "config.mujoco.args_walker_varibad"
    ),
}
#: Two-sided 1% bounds of the ratio of two sample variances of 40 draws each (F distribution, 39 and 39 degrees of
#: freedom), for the spread of the subsampled VAE estimators.
F_RATIO_BOUNDS = (0.43, 2.32)
#: The reference's id of each of our environments.
REFERENCE_ENV_IDS = {"GridNavi-v0": "GridNavi-v0", "WalkerRandParams-v0": "Walker2DRandParams-v0"}


def encoder_sizes(policy: Any) -> tuple[int, int, int]:
    """(state, action, reward) embedding sizes of our encoder (0: not an input)."""
    encoder = policy.history_encoder
    size = lambda module: 0 if module is None else module[0].out_features  # noqa: E731
    return size(encoder.obs_embedding), size(encoder.action_embedding), size(encoder.reward_embedding)


def _linears(module: th.nn.Module) -> list[tuple[str, th.nn.Linear]]:
    return [(name, m) for name, m in module.named_children() if isinstance(m, th.nn.Linear)]


def mlp_roles(group: str, ours: str, ours_module: th.nn.Module, ref: str) -> list[ParamRole]:
    """Our ``mlp`` (Linear, ReLU, ..., Linear) onto the reference's ``fc_layers.i`` and ``fc_out``."""
    linears = _linears(ours_module)
    roles = []
    for position, (name, _) in enumerate(linears):
        target = f"{ref}.fc_out" if position == len(linears) - 1 else f"{ref}.fc_layers.{position}"
        roles += linear_roles(group, f"{ours}.{name}", target)
    return roles


def transition_decoder_roles(
    group: str, ours: str, decoder: Any, ref: str, ref_decoder: th.nn.Module, ref_order: Sequence[str]
) -> list[ParamRole]:
    """Our TransitionDecoder onto the reference's reward or state decoder: the input embeddings, then the MLP whose
    first layer reads ``[z, embedded inputs]``; ``ref_order`` is the reference's order of the inputs after z."""
    roles: list[ParamRole] = []
    if decoder.state_embedding is not None:
        roles += linear_roles(group, f"{ours}.state_embedding.0", f"{ref}.state_encoder.fc")
    if decoder.action_embedding is not None:
        roles += linear_roles(group, f"{ours}.action_embedding.0", f"{ref}.action_encoder.fc")
    widths = {
        "next_state": 0 if decoder.state_embedding is None else decoder.state_embedding[0].out_features,
        "state": 0 if decoder.state_embedding is None else decoder.state_embedding[0].out_features,
        "action": 0 if decoder.action_embedding is None else decoder.action_embedding[0].out_features,
    }
    start, columns = decoder.latent_dim, {}
    for name in decoder.inputs:
        columns[name] = (start, start + widths[name])
        start += widths[name]
    order = [name for name in ref_order if name in decoder.inputs]

    def reorder(weight: th.Tensor) -> th.Tensor:
        # Ours reads [z, s_{t+1}, a_t, s_t] (those present); the reference's state decoder [z, s_t, a_t].
        return th.cat([weight[:, : decoder.latent_dim], *(weight[:, slice(*columns[n])] for n in order)], dim=1)

    linears = _linears(decoder.net)
    for position, (name, _) in enumerate(linears):
        target = f"{ref}.fc_out" if position == len(linears) - 1 else f"{ref}.fc_layers.{position}"
        take = reorder if position == 0 else (lambda tensor: tensor)
        roles.append(ParamRole(group, f"{ours}.net.{name}.weight", f"{target}.weight", take))
        roles.append(ParamRole(group, f"{ours}.net.{name}.bias", f"{target}.bias"))
    return roles


def belief_roles(policy: Any, ref_model: ReferenceModel) -> tuple[list[ParamRole], set[str], list[str]]:
    """The belief family's own modules: the belief projection (the reference's latent encoder), the task embedding
    g(c), and the decoders. Returns (roles, our parameters without counterpart, what the reference lacks)."""
    roles: list[ParamRole] = []
    unmapped: set[str] = set()
    lacking: list[str] = []
    if hasattr(policy, "belief_projection"):
        roles += linear_roles("latent embedding", "belief_projection.0", "policy.latent_encoder.fc")
    if hasattr(policy, "task_embedding"):
        roles += linear_roles("task embedding", "task_embedding.linear", "policy.task_encoder.fc")
    ref_modules = ref_model.modules()
    ours_names = [name for name, _ in policy.named_parameters()]
    for ours_name, ref_name in (("reward_decoder", "reward_decoder"), ("state_decoder", "state_decoder")):
        decoder = getattr(policy, ours_name, None)
        if decoder is None:
            continue
        if ref_name not in ref_modules:
            unmapped |= {name for name in ours_names if name.startswith(f"{ours_name}.")}
            lacking.append(ours_name)
            continue
        group = ours_name.replace("_", " ")
        if isinstance(decoder, th.nn.Sequential):  # one Bernoulli head per grid cell, from z alone
            roles += mlp_roles(group, ours_name, decoder, ref_name)
        else:
            ref_order = ("next_state", "action", "state") if ours_name == "reward_decoder" else ("state", "action")
            roles += transition_decoder_roles(group, ours_name, decoder, ref_name, ref_modules[ref_name], ref_order)
    if hasattr(policy, "task_decoder"):
        roles += mlp_roles("task decoder", "task_decoder", policy.task_decoder, "task_decoder")
        if type(policy).__name__ == "BIPlusPlusHNPolicy":
            # The target lists the generated parameters actor first; the reference's critic first (models/policy.py
            # forward: critic's base parameters + actor's). The task decoder's output rows are permuted to match.
            n_actor = sum(layer.n_generated for layer in policy.mlp_extractor.actor.layers)

            def critic_first(tensor: th.Tensor) -> th.Tensor:
                return th.cat([tensor[n_actor:], tensor[:n_actor]], dim=0)

            roles = [
                dataclasses.replace(role, take=critic_first) if role.ref.startswith("task_decoder.fc_out") else role
                for role in roles
            ]
    return roles, unmapped, lacking


def group_pairs(
    roles: Sequence[ParamRole],
    ours: dict[str, th.Tensor],
    ref: dict[str, th.Tensor],
    groups: Sequence[str] | None = None,
) -> dict[str, list[tuple[th.Tensor, th.Tensor]]]:
    """Gradient (or update) pairs by parameter group, in the order the groups first appear."""
    out: dict[str, list[tuple[th.Tensor, th.Tensor]]] = {}
    for role in roles:
        if groups is None or role.group in groups:
            out.setdefault(role.group, []).append((role.take(ours[role.ours]), ref[role.ref]))
    return out


def optimiser_settings(optimizer: th.optim.Optimizer | None) -> str:
    if optimizer is None:
        return "none"
    group = optimizer.param_groups[0]
    return f"lr {group['lr']:g}, eps {group['eps']:g}"


def zoo_setting_notes(spec: MethodSpec, model: Any, ref_model: ReferenceModel) -> dict[str, str]:
    """Where an unexplained difference of a zoo setting comes from, in both code bases."""
    entry = f"zoo_configs/{spec.conf} ({spec.env_id})"
    policy = model.policy
    ours_encoder = "the policy's Adam" if policy.end_to_end and model.inference_optimizer is None else "its own Adam"
    return {
        "value": (
            f"{entry} trains with value_loss={model.value_loss!r}; the reference uses the clipped Huber loss "
            "(algorithms/ppo.py get_loss with ppo_use_huberloss and ppo_use_clipped_value_loss) for every "
            "model"
        ),
        "clip": (
            f"{entry} clips one global gradient norm (clip_grad_per_module={model.clip_grad_per_module}); the "
            "reference clips the actor-critic's and the encoder's norms apart (algorithms/ppo.py update)"
        ),
        "adam": (
            f"ours ({entry}): actor-critic Adam {optimiser_settings(policy.optimizer)}, encoder in {ours_encoder} "
            f"({optimiser_settings(model.inference_optimizer) if model.inference_optimizer else 'same'}); the "
            f"reference: actor-critic Adam {optimiser_settings(ref_model.ppo.optimiser)} (lr_policy, policy_eps), "
            f"encoder Adam {optimiser_settings(ref_model.vae.optimiser_vae)} (vae.py VaribadVAE.__init__: "
            "optimiser_vae's learning rate is lr_vae when the decoder is enabled but lr_policy when it is disabled, "
            "as in the RL2-style models RNN, RNN+S, RNN+HN; eps torch's default)"
        ),
    }


def build_our_model(spec: MethodSpec, seed: int) -> Any:
    """Our model exactly as the zoo entry builds it (through rl_zoo3's ExperimentManager), with MetaRecurrentPPO as
    the algorithm so that its loss code can be called per minibatch."""
    import envs  # noqa: F401  (registers the ids)
    from sb3_hypernet.experiments.zoo import build_model

    overrides = {} if spec.env_id.startswith("GridNavi") else {"n_envs": 1}  # module sizes do not depend on it
    model, _ = build_model(
        REPO_ROOT / "zoo_configs" / spec.conf, spec.env_id, seed=seed, algo="meta_ppo_lstm", **overrides
    )
    return model


def reference_env(spec: MethodSpec, model: Any) -> StubEnv:
    """The stub of the reference's environment, registered for its ``gym.make``."""
    if spec.env_id.startswith("GridNavi"):
        env = gridnavi_stub()
    else:
        import gymnasium

        import envs  # noqa: F401

        task_env = gymnasium.make(spec.env_id.replace("-v0", "Task-v0"))
        env = StubEnv(
            task_env.observation_space,
            task_env.action_space,
            int(np.prod(task_env.unwrapped.task_space.shape)),
            task_env.spec.max_episode_steps,
        )
        task_env.close()
    STUB_ENVS[REFERENCE_ENV_IDS[spec.env_id]] = lambda: env
    return env


@dataclasses.dataclass
class Pair:
    """One method's two models and what the comparisons share."""

    method: str
    spec: MethodSpec
    ref: Reference
    model: Any
    ref_model: ReferenceModel
    roles: list[ParamRole]
    episodes: MetaEpisodes
    notes: dict[str, str]
    seed: int

    @property
    def policy(self) -> Any:
        return self.model.policy

    @property
    def args(self) -> argparse.Namespace:
        return self.ref_model.args


def reference_model_for(
    ref: Reference,
    spec: MethodSpec,
    model: Any,
    report: Report | None = None,
    method: str = "",
    env: StubEnv | None = None,
) -> tuple[argparse.Namespace, ReferenceModel]:
    """The reference's args and modules for one of our models, with the reference's initialisation (drawn from
    torch's global generator). The searched and tuned settings are ours: the learning rates, and the grid state
    embedding (the reference's models.py notes 25 worked best for RNN+S and RNN+HN on the grids; its dictionaries
    keep 256); with ``report``, the settings changed are listed there. ``env``: the reference's environment stub
    (default: the one that mirrors ours, registered for its ``gym.make``)."""
    policy = model.policy
    if env is None:
        env = reference_env(spec, model)
    overrides: dict[str, Any] = {"lr_policy": policy.optimizer.param_groups[0]["lr"]}
    if model.inference_optimizer is not None and not policy.end_to_end:
        overrides["lr_vae"] = model.inference_optimizer.param_groups[0]["lr"]
    state_embedding = getattr(policy.mlp_extractor, "state_embedding", None)
    if state_embedding is not None:
        overrides["policy_state_embedding_dim"] = state_embedding[0].out_features
    config = ref.configs[spec.ref_config]
    args = reference_args(ref, config, spec.ref_set, spec.ref_model, overrides, env)
    if report is not None:
        own = reference_args(ref, config, spec.ref_set, spec.ref_model, {}, env)
        changed = [
            f"{key} {getattr(own, key)!r} -> {value!r}"
            for key, value in overrides.items()
            if getattr(own, key) != value
        ]
        if changed:
            report.settings.append(f"{method}: {', '.join(changed)}")
    return args, build_reference_model(ref, args, env)


def build_pair(report: Report, ref: Reference, method: str, episodes: MetaEpisodes, seed: int) -> Pair:
    """Both models, our weights copied into the reference's through the parameter table (checked for coverage)."""
    spec = METHODS[method]
    model = build_our_model(spec, seed)
    policy = model.policy
    perturb_(policy, seed + 1)
    args, ref_model = reference_model_for(ref, spec, model, report, method)
    roles = encoder_roles(*encoder_sizes(policy)) + policy_roles(policy)
    extra, ours_unmapped, lacking = belief_roles(policy, ref_model)
    roles += extra
    ref_unmapped = set()
    if spec.family == "multi":
        # The reference's Multi+HN is a VariBAD model whose policy ignores the latent: its VAE has no counterpart.
        ref_unmapped = {
            name for name in ("reward_decoder", "state_decoder", "task_decoder") if name in ref_model.modules()
        }
    check_coverage(roles, policy, ref_model, ours_unmapped, ref_unmapped)
    copy_into_reference(roles, policy, ref_model)
    for name in lacking:
        extra_term = {"reward_decoder": "decode_reward", "state_decoder": "decode_state"}[name]
        report.add(
            Result(
                method,
                f"{name.replace('_', ' ')} on both sides",
                UNEXPLAINED,
                math.inf,
                0.0,
                note=f"ours has one (zoo_configs/{spec.conf} {spec.env_id}); the reference's {extra_term} is "
                f"{getattr(args, extra_term)} ({spec.ref_config.replace('.', '/')}.py, not set by the "
                f"{spec.ref_set!r} experiment set or {spec.ref_model}); NeurIPS 2023 appendix 8.1 lists it",
            )
        )
    return Pair(method, spec, ref, model, ref_model, roles, episodes, zoo_setting_notes(spec, model, ref_model), seed)


def compare_normaliser(
    report: Report, pair: Pair, name: str, ours: Any, rms: Any, data: th.Tensor, n_seq: int, clips: bool
) -> None:
    """Our RunningNormalizer against the reference's RunningMeanStd on the same inputs (one rollout ``data``, B
    sequences), then both given the reference's statistics of the rollout for what follows."""
    method, ref = pair.method, pair.ref
    fresh_ours, fresh_ref = copy.deepcopy(ours), ref.helpers.RunningMeanStd(shape=rms.mean.shape)
    fresh_ours.observe(data)
    fresh_ours.commit()
    fresh_ref.update(data)
    key = ["running-normaliser"]
    report.compare(method, f"{name} normaliser mean (one rollout)", (fresh_ours.mean, fresh_ref.mean), key)
    report.compare(method, f"{name} normaliser variance (one rollout)", (fresh_ours.var, fresh_ref.var), key)
    report.compare(
        method,
        f"normalised {name} (each side's statistics)",
        (fresh_ours(data), reference_normalise(fresh_ref, data)),
        key,
        note="" if clips else "our clip is off for this input",
    )
    # Rollouts A then B: at B's update ours still normalises with A's statistics, the reference with A and B's.
    half = n_seq // 2 * (len(data) // n_seq)
    timed_ours, timed_ref = copy.deepcopy(ours), ref.helpers.RunningMeanStd(shape=rms.mean.shape)
    timed_ours.observe(data[:half])
    timed_ours.commit()
    timed_ours.observe(data[half:])
    timed_ref.update(data[:half])
    timed_ref.update(data[half:])
    report.compare(
        method,
        f"normalised {name} at rollout B's update (rollouts A, B)",
        (timed_ours(data[half:]), reference_normalise(timed_ref, data[half:])),
        ["normaliser-timing", "running-normaliser"],
    )
    rms.update(data)
    set_our_statistics(ours, rms)
    report.compare(method, f"normalised {name} (statistics aligned)", (ours(data), reference_normalise(rms, data)))


def compare_latents(report: Report, pair: Pair, obs_keys: Sequence[str]) -> tuple[th.Tensor, th.Tensor]:
    """Our GRU latent against the reference encoder's, as built and with each deliberate difference removed;
    returns the reference's (mean, logvar) (T + 1, B, latent_dim), prior first."""
    episodes, policy, args = pair.episodes, pair.policy, pair.args
    t_steps, n_seq = episodes.shape
    with th.no_grad():
        mean, logvar = reference_latents(pair.ref_model, episodes)
        # The reference's own environment shows the inner episode's terminal state at a boundary.
        boundary = dataclasses.replace(episodes, next_obs=episodes.terminal_next)
        boundary_mean, boundary_logvar = reference_latents(pair.ref_model, boundary)
    latent = pair.ref.helpers.get_latent_for_policy(args, latent_sample=mean, latent_mean=mean, latent_logvar=logvar)
    for quantity, first, zero_done, keys in (
        ("latent, as built (all steps)", 0, False, ["first-latent", "episode-done"]),
        ("latent, episode_done zeroed (all steps)", 0, True, ["first-latent"]),
        ("latent, from step 1 (episode_done as built)", 1, False, ["episode-done"]),
        ("latent, aligned (from step 1, episode_done zeroed)", 1, True, []),
    ):
        ours_latent = our_latents(policy, our_obs(episodes, first, zero_done, obs_keys), n_seq)
        report.compare(pair.method, quantity, (ours_latent, flatten_steps(latent[first:t_steps])), keys)
    boundary_latent = th.cat([boundary_mean, boundary_logvar], dim=-1)
    report.compare(
        pair.method,
        "latent, aligned; reference reading terminal states",
        (our_latents(policy, our_obs(episodes, 1, True, obs_keys), n_seq), flatten_steps(boundary_latent[1:t_steps])),
        ["inner-boundary"],
    )
    return mean, logvar


def phases(pair: Pair) -> list[tuple[str, str]]:
    """(phase label, what the policy conditions on) for each phase the method has."""
    if pair.spec.family == "multi":
        return [("", "task")]
    if getattr(pair.policy, "pretrains", False):
        return [("meta-training", "latent"), ("pre-training", "task")]
    return [("", "latent")]


@contextlib.contextmanager
def our_phase(policy: Any, phase: str) -> Iterator[None]:
    """Our policy in a phase (pre-training: the multi-task policy on g(c)), without the switch's re-initialisation."""
    if not getattr(policy, "pretrains", False):
        yield
        return
    saved = bool(policy.pretraining)
    policy.pretraining.fill_(phase == "pre-training")
    try:
        yield
    finally:
        policy.pretraining.fill_(saved)


def compare_policy_and_ppo(
    report: Report, pair: Pair, obs_keys: Sequence[str], mean: th.Tensor, logvar: th.Tensor, phase: str, condition: str
) -> dict[str, dict[str, th.Tensor]]:
    """Policy outputs, PPO loss terms and gradients on the aligned steps (1..T-1) in one phase; returns what the
    later comparisons reuse (the batch pieces and both sides' gradients)."""
    method, episodes, policy, model, ref_model = pair.method, pair.episodes, pair.policy, pair.model, pair.ref_model
    t_steps, n_seq = episodes.shape
    label = f" [{phase}]" if phase else ""
    obs = our_obs(episodes, 1, zero_done=True, keys=obs_keys)
    actions = flatten_steps(episodes.actions[1:])
    state = obs["obs"]
    task = flatten_steps(episodes.obs["task"][1:]) if "task" in episodes.obs else None
    flat_mean, flat_logvar = flatten_steps(mean[1:t_steps]), flatten_steps(logvar[1:t_steps])
    with our_phase(policy, phase):
        ours_out = our_outputs(policy, obs, actions, n_seq)
    ref_out = reference_outputs(pair.ref, ref_model, state, flat_mean, flat_logvar, actions, task, condition)
    for name, value in ref_out.items():
        if name != "latent":  # compared above ("latent, aligned")
            report.compare(method, name + label, (ours_out[name], value))

    targets = PPOTargets.around(ref_out["log-prob of actions"], ref_out["values"], pair.seed + 2)
    length = t_steps - 1
    batch = our_batch(
        obs, actions, targets, targets.reference_advantages, zero_state(policy, n_seq), sequence_starts(n_seq, length)
    )
    # The reference conditions on the task while its update count is below task_num_warmup (models/policy.py
    # should_overwrite_task); past it, with task_chance 0, on the latent.
    args = pair.args
    ref_model.ppo.update_index = 0 if condition == "task" or args.task_num_warmup is None else args.task_num_warmup

    def ref_run(max_norm: float | None) -> tuple[dict[str, th.Tensor], dict[str, th.Tensor]]:
        grad_mean, grad_logvar = reference_latents(ref_model, episodes)  # with the graph where the RL loss trains it
        sample = reference_sample(
            state, task, actions, flatten_steps(grad_mean[1:t_steps]), flatten_steps(grad_logvar[1:t_steps]), targets
        )
        return reference_loss_and_gradients(pair.ref, ref_model, sample, max_norm)

    with our_phase(policy, phase):
        ref_terms, ref_grads = ref_run(None)
        terms, grads = our_loss_and_gradients(model, batch, model.value_loss, math.inf, False)
        report.compare(method, "PPO policy loss" + label, (terms["policy loss"], ref_terms["policy loss"]))
        report.compare(method, "entropy term" + label, (terms["entropy"], ref_terms["entropy"]))
        report.compare(
            method,
            f"value loss (zoo: {model.value_loss})" + label,
            (terms["value loss"], ref_terms["value loss"]),
            unexplained=pair.notes["value"],
        )
        report.compare(
            method,
            f"total loss (zoo: {model.value_loss})" + label,
            (terms["total loss"], ref_terms["total loss"]),
            unexplained=pair.notes["value"],
        )
        compare_advantage_normalisation(report, pair, batch, targets, ref_terms, label)
        untouched = {role.group for role in pair.roles} - {
            role.group for role in pair.roles if bool(ref_grads[role.ref].abs().max() > 0)
        }
        for group, pairs in group_pairs(pair.roles, grads, ref_grads).items():
            if group not in untouched:
                report.compare(method, f"gradient: {group}" + label, pairs)
        if untouched:
            report.compare(
                method,
                "gradient (the PPO loss must not reach): " + ", ".join(sorted(untouched)) + label,
                [pairs_ for group in untouched for pairs_ in group_pairs(pair.roles, grads, ref_grads)[group]],
            )
    return {
        "batch": {"obs": obs, "actions": actions, "state": state},
        "targets": targets,  # type: ignore[dict-item]
        "batch_object": batch,  # type: ignore[dict-item]
        "ref_terms": ref_terms,
        "ref_grads": ref_grads,
        "ref_run": ref_run,  # type: ignore[dict-item]
    }


def compare_advantage_normalisation(
    report: Report, pair: Pair, batch: Any, targets: PPOTargets, ref_terms: dict[str, th.Tensor], label: str
) -> None:
    """Our update's advantage normalisation against the reference's on the same raw advantages."""
    model = pair.model
    if getattr(model, "advantage_normalization", "minibatch") == "batch":
        ours = our_batch_normalised_advantages(model, targets.raw_advantages)
        report.compare(
            pair.method,
            "normalised advantages (zoo: advantage_normalization='batch')" + label,
            (ours, targets.reference_advantages),
        )
        return
    raw_batch = batch._replace(advantages=targets.raw_advantages)
    terms, _ = our_loss_and_gradients(model, raw_batch, model.value_loss, math.inf, False, normalize_advantage=True)
    report.compare(
        pair.method,
        "PPO policy loss, each side's advantage normalisation" + label,
        (terms["policy loss"], ref_terms["policy loss"]),
        ["advantage-normalisation"],
    )


def our_batch_normalised_advantages(model: Any, raw: th.Tensor) -> th.Tensor:
    """The advantages as MetaRecurrentPPO.train() normalises the rollout's before its minibatches
    (advantage_normalization='batch'): train() run with no epochs on a buffer holding ``raw``."""
    from stable_baselines3.common.logger import Logger

    saved = {
        name: getattr(model, name) for name in ("n_epochs", "num_timesteps", "pretrain_updates_done", "_n_updates")
    }
    saved_advantages = model.rollout_buffer.advantages
    saved_logger = getattr(model, "_logger", None)
    model.set_logger(Logger(folder=None, output_formats=[]))
    model.n_epochs, model.num_timesteps = 0, max(model.num_timesteps, getattr(model, "precollect_frames", 0))
    model.rollout_buffer.advantages = raw.numpy().reshape(-1, 1).copy()
    try:
        model.train()
        return th.as_tensor(model.rollout_buffer.advantages).reshape(-1)
    finally:
        for name, value in saved.items():
            setattr(model, name, value)
        model.rollout_buffer.advantages = saved_advantages
        if saved_logger is not None:
            model.set_logger(saved_logger)


def compare_clipping(report: Report, pair: Pair, shared: dict[str, Any]) -> dict[str, th.Tensor]:
    """Clipped gradients as the zoo entry clips them and per module, against the reference's (actor-critic and, where
    the RL loss trains it, encoder apart). Returns our per-module clipped gradients (for the Adam step)."""
    model, ref_model, roles = pair.model, pair.ref_model, pair.roles
    ref_grads, batch = shared["ref_grads"], shared["batch_object"]
    group_norm = lambda names: float(  # noqa: E731
        th.linalg.vector_norm(th.stack([ref_grads[name].norm() for name in names])) if names else 0.0
    )
    norms = {
        "encoder": group_norm([f"encoder.{n}" for n, _ in ref_model.encoder.named_parameters()]),
        "actor-critic": group_norm([f"policy.{n}" for n, _ in ref_model.policy.named_parameters()]),
    }
    clipped_norms = [norm for norm in norms.values() if norm > 0]
    # The zoo's threshold unless a group's norm is below it; then half the smaller one, so that both groups are
    # clipped and the two schemes can be told apart.
    max_norm = model.max_grad_norm if min(clipped_norms) > model.max_grad_norm else 0.5 * min(clipped_norms)
    setting = f"max norm {max_norm:.2g}"
    note = (
        ""
        if max_norm == model.max_grad_norm
        else f"max norm lowered from {model.max_grad_norm} to half the smaller nonzero group norm (encoder "
        f"{norms['encoder']:.2g}, actor-critic {norms['actor-critic']:.2g}) so that clipping acts"
    )
    _, ref_clipped = shared["ref_run"](max_norm)
    _, zoo_clipped = our_loss_and_gradients(model, batch, model.value_loss, max_norm, model.clip_grad_per_module)
    all_groups = {role.group for role in roles}
    report.compare(
        pair.method,
        f"clipped gradient, zoo (clip_grad_per_module={model.clip_grad_per_module}), {setting}",
        gradient_pairs(roles, zoo_clipped, ref_clipped, all_groups),
        unexplained=pair.notes["clip"],
        note=note,
    )
    shared["ref_clipped"] = ref_clipped
    return zoo_clipped


def compare_sequence_cut(report: Report, pair: Pair, shared: dict[str, Any]) -> None:
    """RecurrentPPO's cut sequences (end-to-end methods, whose encoder the RL loss trains): same forward, gradient
    truncated at the cut."""
    episodes, policy, model = pair.episodes, pair.policy, pair.model
    t_steps, n_seq = episodes.shape
    length, cut = t_steps - 1, (t_steps - 1) // 2
    batch = shared["batch"]
    cut_batch = cut_sequences(policy, batch["obs"], batch["actions"], shared["targets"], n_seq, length, cut)
    terms, grads = our_loss_and_gradients(model, cut_batch, model.value_loss, math.inf, False)
    report.compare(
        pair.method,
        f"total loss, sequences cut at step {cut + 1} (stored state)",
        (terms["total loss"], shared["ref_terms"]["total loss"]),
    )
    for group, pairs in group_pairs(pair.roles, grads, shared["ref_grads"]).items():
        keys = ["sequence-cut"] if group == "encoder" else []
        report.compare(pair.method, f"gradient: {group}, sequences cut at step {cut + 1}", pairs, keys)


def parameters_by_name(ref_model: ReferenceModel) -> dict[str, th.nn.Parameter]:
    return {
        f"{prefix}.{name}": p for prefix, module in ref_model.modules().items() for name, p in module.named_parameters()
    }


def compare_adam_step(
    report: Report,
    pair: Pair,
    ours_grads: dict[str, th.Tensor],
    ref_grads: dict[str, th.Tensor],
    ours_optimisers: Sequence[th.optim.Optimizer],
    ref_optimisers: Sequence[th.optim.Optimizer],
    label: str,
    groups: set[str],
) -> None:
    """One step of each side's optimisers from the same gradients (ours, mapped into the reference's layout: the
    gradients themselves are compared apart, and Adam's first step, lr * g / (|g| + eps), would turn float32 rounding
    of near-zero gradients into steps of size lr): the parameter updates, by group. Only the parameters of the given
    optimisers get gradients (Adam would count a step for a zero gradient)."""
    policy = pair.policy
    ours_params = dict(policy.named_parameters())
    ref_params = parameters_by_name(pair.ref_model)
    stepped_ours = {id(p) for opt in ours_optimisers for group in opt.param_groups for p in group["params"]}
    stepped_ref = {id(p) for opt in ref_optimisers for group in opt.param_groups for p in group["params"]}
    ours_before = {name: p.detach().clone() for name, p in ours_params.items()}
    ref_before = {name: p.detach().clone() for name, p in ref_params.items()}
    for name, p in ours_params.items():
        p.grad = ours_grads[name].clone() if id(p) in stepped_ours else None
    mapped = {role.ref: role.take(ours_grads[role.ours]) for role in pair.roles}
    for name, p in ref_params.items():
        p.grad = mapped.get(name, ref_grads[name]).clone() if id(p) in stepped_ref else None
    for optimiser in [*ours_optimisers, *ref_optimisers]:
        optimiser.step()
    ours_step = {name: p.detach() - ours_before[name] for name, p in ours_params.items()}
    ref_step = {name: p.detach() - ref_before[name] for name, p in ref_params.items()}
    with th.no_grad():  # back to the compared weights
        for name, p in ours_params.items():
            p.copy_(ours_before[name])
        for name, p in ref_params.items():
            p.copy_(ref_before[name])
    for group, pairs in group_pairs(pair.roles, ours_step, ref_step, groups).items():
        report.compare(pair.method, f"Adam step ({label}): {group}", pairs, unexplained=pair.notes["adam"])


@contextlib.contextmanager
def shared_noise(noise: th.Tensor) -> Iterator[None]:
    """Both VAEs draw z = mean + std * eps with ``th.randn_like``: ours on (B, T + 1, d) tensors, the reference's on
    (T + 1, B, d). Both get the same ``noise`` (B, T + 1, d) while this is active."""
    original = th.randn_like
    batch_first, time_first = tuple(noise.shape), (noise.shape[1], noise.shape[0], *noise.shape[2:])

    def randn_like(tensor: th.Tensor, *args: Any, **kwargs: Any) -> th.Tensor:
        if tuple(tensor.shape) == batch_first:
            return noise.clone()
        if tuple(tensor.shape) == time_first:
            return noise.transpose(0, 1).clone()
        return original(tensor, *args, **kwargs)

    th.randn_like = randn_like
    try:
        yield
    finally:
        th.randn_like = original


def our_vae_batch(episodes: MetaEpisodes, obs_keys: Sequence[str]) -> dict[str, Any]:
    """The meta-episodes as our MetaEpisodeBuffer.sample returns them."""
    t_steps, n_seq = episodes.shape
    obs = {
        key: th.cat([episodes.obs[key], episodes.final_obs[key][None]], dim=0).transpose(0, 1)
        for key in obs_keys
        if key != "task"
    }
    batch = {
        "obs": obs,
        "reward": episodes.rewards[..., 0].transpose(0, 1),
        "next_state": episodes.terminal_next.transpose(0, 1),
        "lengths": th.full((n_seq,), t_steps),
    }
    if "task" in episodes.obs:
        batch["task"] = episodes.obs["task"][0]
    return batch


@contextlib.contextmanager
def aligned_encoding(policy: Any) -> Iterator[None]:
    """Our VAE's latents with the deliberate encoder differences removed: the first latent from an all-zero GRU input
    (as the reference's prior), then the GRU from zero over o_1 .. o_T with episode_done 0 (the reference reads
    (a_t, r_t, s_{t+1}) from h = 0 after its prior). Everything downstream is our code."""
    original = policy.encode_meta_episodes

    def encode(obs: dict[str, th.Tensor]) -> tuple[th.Tensor, th.Tensor]:
        features, _ = original(obs)
        rest = {key: value[:, 1:] for key, value in obs.items()}
        rest["episode_done"] = th.zeros_like(rest["episode_done"])
        _, later = original(rest)
        encoder = policy.history_encoder
        n_seq = features.shape[0]
        hidden = th.zeros(encoder.num_layers, n_seq, encoder.hidden_size)
        prior_output, _ = encoder.gru(th.zeros(1, n_seq, encoder.gru.input_size), hidden)
        prior = encoder.to_latent(prior_output).transpose(0, 1)
        return features, th.cat([prior, later], dim=1)

    policy.encode_meta_episodes = encode
    try:
        yield
    finally:
        del policy.encode_meta_episodes


@contextlib.contextmanager
def without_subsampling(policy: Any, args: argparse.Namespace) -> Iterator[None]:
    """Every ELBO and reconstruction term on both sides (the subsampled estimators are compared apart)."""
    saved = (policy._vae_config["n_elbo_samples"], policy._vae_config["n_decode_samples"])
    saved_ref = (args.vae_subsample_elbos, args.vae_subsample_decodes)
    policy._vae_config["n_elbo_samples"] = policy._vae_config["n_decode_samples"] = None
    args.vae_subsample_elbos = args.vae_subsample_decodes = None
    try:
        yield
    finally:
        policy._vae_config["n_elbo_samples"], policy._vae_config["n_decode_samples"] = saved
        args.vae_subsample_elbos, args.vae_subsample_decodes = saved_ref


def reference_vae_terms(pair: Pair, episodes: MetaEpisodes) -> dict[str, th.Tensor]:
    """The reference VAE's terms on the meta-episodes (vae.py compute_loss; weighted and summed as compute_vae_loss
    does), its encoder reading (a_t, r_t, s_{t+1}) with s_{t+1} as our wrapper shows it, the decoders decoding at
    the inner env's own next states."""
    args, vae = pair.args, pair.ref_model.vae
    t_steps, n_seq = episodes.shape
    mean, logvar = reference_latents(pair.ref_model, episodes)
    with pair.ref.distributions.active():
        rew, state, task, kl = vae.compute_loss(
            mean,
            logvar,
            episodes.obs["obs"],
            episodes.terminal_next,
            episodes.reference_actions(),
            episodes.rewards,
            episodes.obs["task"][0] if "task" in episodes.obs else None,
            [t_steps] * n_seq,
            pair.ref_model.ppo.get_encoded_task_func(),
        )
    task_weight = args.ti_coeff if args.ti_coeff is not None else args.task_loss_coeff
    as_tensor = lambda value: value if isinstance(value, th.Tensor) else th.tensor(float(value))  # noqa: E731
    terms = {
        "reward_reconstruction": args.rew_loss_coeff * as_tensor(rew),
        "state_reconstruction": args.state_loss_coeff * as_tensor(state),
        "task": task_weight * as_tensor(task),
        "kl": args.kl_weight * as_tensor(kl),
    }
    terms["total"] = sum(terms.values())
    return terms


def compare_vae(report: Report, pair: Pair, obs_keys: Sequence[str]) -> None:
    """VariBAD's VAE: each ELBO term and their sum, as built and aligned, the gradients and one Adam step of the VAE
    optimisers; then the subsampled estimators (MuJoCo settings) by their mean over draws."""
    method, episodes, policy, args = pair.method, pair.episodes, pair.policy, pair.args
    t_steps, n_seq = episodes.shape
    if n_seq == t_steps + 1:
        raise ValueError("use a number of meta-episodes other than T + 1 (the shared noise is told apart by shape)")
    batch = our_vae_batch(episodes, obs_keys)
    latent_dim = policy.history_encoder.output_dim // 2
    noise = th.randn(n_seq, t_steps + 1, latent_dim, generator=th.Generator().manual_seed(pair.seed + 3))
    ref_modules = pair.ref_model.modules()
    vae_groups = {role.group for role in pair.roles if role.group == "encoder" or "decoder" in role.group}
    with without_subsampling(policy, args):
        with shared_noise(noise):
            ref_terms = reference_vae_terms(pair, episodes)
            ref_terms["total"].backward()
        ref_grads = {
            name: (p.grad.clone() if p.grad is not None else th.zeros_like(p))
            for name, p in parameters_by_name(pair.ref_model).items()
        }
        for p in parameters_by_name(pair.ref_model).values():
            p.grad = None
        # Terms our VAE has and the reference's lacks (a decoder it does not build) are left out of the sums.
        lacking = [
            term
            for term, decoder in (
                ("reward_reconstruction", "reward_decoder"),
                ("state_reconstruction", "state_decoder"),
            )
            if hasattr(policy, decoder) and decoder not in ref_modules
        ]
        with shared_noise(noise), th.no_grad():
            built = policy.meta_episode_losses(batch)
        built_total = sum(value for name, value in built.items() if name not in lacking)
        report.compare(
            method,
            "VAE loss, as built",
            (built_total, ref_terms["total"].detach()),
            ["first-latent", "episode-done"],
            rtol=VAE_RTOL,
        )
        with shared_noise(noise), aligned_encoding(policy):
            terms = policy.meta_episode_losses(batch)
        unknown = sorted(set(terms) - set(ref_terms))
        if unknown:
            raise RuntimeError(f"our VAE has terms the comparison does not know: {unknown}")
        for name in ("reward_reconstruction", "state_reconstruction", "task", "kl"):
            if name in lacking or (name not in terms and float(ref_terms[name]) == 0.0):
                continue  # not a term of both
            ours = terms.get(name, th.tensor(0.0))
            report.compare(
                method,
                f"VAE {name.replace('_', ' ')} (aligned)",
                (ours.detach(), ref_terms[name].detach()),
                # The KL sums small differences of O(1) terms: held to the usual tolerance.
                rtol=RTOL if name == "kl" else VAE_RTOL,
            )
        total = sum(value for name, value in terms.items() if name not in lacking)
        report.compare(
            method,
            "VAE total (aligned" + (f"; without our {', '.join(lacking)})" if lacking else ")"),
            (total.detach(), ref_terms["total"].detach()),
            rtol=VAE_RTOL,
        )
        for p in policy.parameters():
            p.grad = None
        total.backward()
        grads = {
            name: (p.grad.clone() if p.grad is not None else th.zeros_like(p)) for name, p in policy.named_parameters()
        }
        for p in policy.parameters():
            p.grad = None
        for group, pairs in group_pairs(pair.roles, grads, ref_grads, vae_groups).items():
            report.compare(method, f"VAE gradient: {group}", pairs, rtol=VAE_GRAD_RTOL)
        compare_adam_step(
            report,
            pair,
            grads,
            ref_grads,
            [pair.model.inference_optimizer],
            [pair.ref_model.vae.optimiser_vae],
            "VAE optimiser",
            vae_groups,
        )
    if args.vae_subsample_elbos or policy._vae_config["n_elbo_samples"]:
        compare_subsampled_elbo(report, pair, batch)


def compare_subsampled_elbo(report: Report, pair: Pair, batch: dict[str, Any], draws: int = 40) -> None:
    """With ELBO and reconstruction terms drawn at random (MuJoCo: 50 of each), both losses are estimators; compare
    their means over ``draws`` draws, term by term, within three standard errors."""
    policy, episodes = pair.policy, pair.episodes
    ours: dict[str, list[float]] = {}
    theirs: dict[str, list[float]] = {}
    generator_state = th.get_rng_state()
    th.manual_seed(pair.seed + 4)
    with th.no_grad():
        for _ in range(draws):
            with aligned_encoding(policy):
                for name, value in policy.meta_episode_losses(batch).items():
                    ours.setdefault(name, []).append(float(value))
            for name, value in reference_vae_terms(pair, episodes).items():
                theirs.setdefault(name, []).append(float(value))
    th.set_rng_state(generator_state)
    for name in ("state_reconstruction", "reward_reconstruction", "kl"):
        if name not in ours or not any(theirs.get(name, [0.0])):
            continue
        a, b = np.array(ours[name]), np.array(theirs[name])
        error = 3.0 * math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
        diff = abs(a.mean() - b.mean())
        quantity = f"VAE {name.replace('_', ' ')}, subsampled: mean of {draws} draws"
        note = f"mean over draws: ours {a.mean():.4g}, reference {b.mean():.4g}, 3 standard errors {error:.2g}"
        if name == "kl":
            note += (
                "; the reference selects the KL terms of its subsampled ELBO terms with kl_divergences[elbo_indices] "
                "(vae.py compute_kl_loss), which indexes the time axis only: each of its n * B drawn indices adds the "
                f"KL of all B meta-episodes at that step, B times ours in expectation (B = {episodes.shape[1]} here, "
                "vae_batch_num_trajs = 10 in its MuJoCo configs); ours sums the KL of each meta-episode's own "
                "drawn terms (sb3_hypernet/task_inference/belief.py meta_episode_losses)"
            )
        if diff <= error:
            report.add(Result(pair.method, quantity, EQUAL, diff, error, note=note))
        elif name == "kl":
            report.add(Result(pair.method, quantity, DELIBERATE_STATUS, diff, error, ("kl-subsample-index",), note))
        else:
            report.add(Result(pair.method, quantity, UNEXPLAINED, diff, error, note=note))
        # The spread of the estimators: a variance ratio outside the two-sided 1% bounds of an F(draws - 1, draws - 1)
        # distribution (about 0.44 .. 2.3 for 40 draws) says the draws are made differently.
        ratio = a.var(ddof=1) / b.var(ddof=1)
        low, high = F_RATIO_BOUNDS
        spread_note = (
            f"standard deviation over draws: ours {a.std(ddof=1):.3g}, reference {b.std(ddof=1):.3g} (variance ratio "
            f"{ratio:.3g}, 1% bounds {low:.2f} .. {high:.2f}); both draw each latent's reconstruction terms "
            "independently with replacement (sb3_hypernet/task_inference/belief.py meta_episode_losses; vae.py "
            "compute_loss)"
        )
        within = low <= ratio <= high
        status = EQUAL if within else DELIBERATE_STATUS if name == "kl" else UNEXPLAINED
        report.add(
            Result(
                pair.method,
                f"VAE {name.replace('_', ' ')}, subsampled: spread of {draws} draws",
                status,
                abs(a.std(ddof=1) - b.std(ddof=1)),
                b.std(ddof=1) * (math.sqrt(high) - 1.0),
                ("kl-subsample-index",) if status == DELIBERATE_STATUS else (),
                note=spread_note,
            )
        )


def compare_method(report: Report, ref: Reference, method: str, episodes: MetaEpisodes, seed: int) -> None:
    """Every compared quantity of one method."""
    pair = build_pair(report, ref, method, episodes, seed)
    policy, ref_model, family = pair.policy, pair.ref_model, pair.spec.family
    obs_keys = list(policy.observation_space.spaces)
    t_steps, n_seq = episodes.shape

    # --- normalised inputs, latents --------------------------------------------------------------------------
    normalizer = getattr(policy.mlp_extractor, "state_normalizer", None)
    rms = getattr(ref_model.policy, "state_rms", None)
    if (normalizer is None) != (rms is None):
        report.add(Result(method, "state normalisation on both sides", UNEXPLAINED, math.inf, 0.0))
    elif normalizer is not None:
        compare_normaliser(report, pair, "state", normalizer, rms, flatten_steps(episodes.obs["obs"]), n_seq, True)
    task_embedding = getattr(policy, "task_embedding", None)
    if task_embedding is not None:
        tasks = flatten_steps(episodes.obs["task"])
        compare_normaliser(
            report, pair, "task", task_embedding.normalizer, ref_model.policy.task_rms, tasks, n_seq, False
        )
    if family == "multi":  # the policy never reads the encoder (nor does the reference's)
        with th.no_grad():
            mean, logvar = reference_latents(ref_model, episodes)
    else:
        mean, logvar = compare_latents(report, pair, obs_keys)
    if family == "belief":
        beliefs = flatten_steps(th.cat([mean, logvar], dim=-1)[:t_steps])
        compare_normaliser(
            report, pair, "belief", policy.belief_normalizer, ref_model.policy.latent_rms, beliefs, n_seq, False
        )

    # --- policy, PPO loss and gradients per phase; clipping, sequence cut and one optimiser step once --------------
    vae_groups = {role.group for role in pair.roles if role.group == "encoder" or "decoder" in role.group}
    for index, (phase, condition) in enumerate(phases(pair)):
        shared = compare_policy_and_ppo(report, pair, obs_keys, mean, logvar, phase, condition)
        if index:
            continue
        with our_phase(policy, phase):
            clipped = compare_clipping(report, pair, shared)
            if family == "end-to-end":
                compare_sequence_cut(report, pair, shared)
        trains_encoder = policy.end_to_end and pair.model.inference_optimizer is not None
        compare_adam_step(
            report,
            pair,
            clipped,
            shared["ref_clipped"],
            [policy.optimizer, *([pair.model.inference_optimizer] if trains_encoder else [])],
            [ref_model.ppo.optimiser, *([ref_model.ppo.optimiser_vae] if pair.args.rlloss_through_encoder else [])],
            "PPO optimisers",
            {role.group for role in pair.roles} - (set() if family == "end-to-end" else vae_groups),
        )

    # --- VariBAD's VAE ------------------------------------------------------------------------------------------
    if family == "belief":
        compare_vae(report, pair, obs_keys)


def cut_sequences(
    policy: Any, obs: dict[str, th.Tensor], actions: th.Tensor, targets: PPOTargets, n_seq: int, length: int, cut: int
) -> Any:
    """The aligned batch as RecurrentPPO would present it with every meta-episode cut in two at ``cut``: the second
    part restarts from the stored (detached) GRU state, and the first is padded to the second's length."""
    first_len, second_len = cut, length - cut
    width = max(first_len, second_len)
    with th.no_grad():
        _, _, (hidden, _) = policy._encode_latent(
            {k: v.reshape(n_seq, length, *v.shape[1:])[:, :cut].reshape(-1, *v.shape[1:]) for k, v in obs.items()},
            zero_state(policy, n_seq),
            sequence_starts(n_seq, cut),
        )

    def pad(x: th.Tensor) -> th.Tensor:
        """(n_seq * length, ...) -> (2 * n_seq * width, ...): sequence b's two parts are rows 2b and 2b + 1."""
        x = x.reshape(n_seq, length, *x.shape[1:])
        out = th.zeros(n_seq, 2, width, *x.shape[2:], dtype=x.dtype)
        out[:, 0, :first_len] = x[:, :cut]
        out[:, 1, :second_len] = x[:, cut:]
        return out.reshape(-1, *x.shape[2:])

    mask = pad(th.ones(n_seq * length))
    starts = th.zeros(n_seq, 2, width)
    starts[:, 0, 0] = 1.0
    state = th.zeros(hidden.shape[0], 2 * n_seq, hidden.shape[2])
    state[:, 1::2] = hidden
    padded_targets = PPOTargets(*(pad(getattr(targets, f.name)) for f in dataclasses.fields(PPOTargets)))
    return our_batch(
        {key: pad(value) for key, value in obs.items()},
        pad(actions),
        padded_targets,
        pad(targets.reference_advantages),
        (state, state.clone()),
        starts.reshape(-1),
        mask,
    )


# ------------------------------------------------------------------------------------------------------------------
# Initialisation: each side's modules built fresh with its own initialisation, compared over seeds
# ------------------------------------------------------------------------------------------------------------------
#: Methods whose initialisation and training loop are compared (on GridNavi-v0).
INIT_METHODS = ("RNN", "RNN+S", "RNN+HN", "TI++HN", "VI+HN")
#: Two statistics over seeds differ when their means are more than this many standard errors apart. With 30 seeds
#: (t with 29 degrees of freedom) one statistic that does not differ passes the bound with a chance of 2.5e-5; the
#: init lines test about 700 statistics, so a false alarm among them has a chance of about 2%.
INIT_Z = 5.0
#: The reference's state embeddings (the encoder's and the policy's), whose fan-in is the state's width.
STATE_EMBEDDINGS = (
    "encoder.state_encoder.fc.weight",
    "encoder.state_encoder.fc.bias",
    "policy.state_encoder.fc.weight",
    "policy.state_encoder.fc.bias",
)


@dataclasses.dataclass(frozen=True)
class SeedStatistic:
    """The mean of a statistic's per-seed draws and its standard error."""

    value: float
    error: float

    @classmethod
    def mean_of(cls, draws: Sequence[float]) -> SeedStatistic:
        values = np.asarray(draws, dtype=np.float64)
        error = float(values.std(ddof=1)) / math.sqrt(len(values)) if len(values) > 1 else 0.0
        return cls(float(values.mean()), error)


def seed_tolerance(ours: SeedStatistic, ref: SeedStatistic) -> float:
    """INIT_Z standard errors of the difference, plus the float32 tolerance for statistics that do not vary."""
    return INIT_Z * math.hypot(ours.error, ref.error) + ATOL + RTOL * max(abs(ours.value), abs(ref.value))


class SeedDraws:
    """Per-seed values of named statistics, ours and the reference's."""

    def __init__(self) -> None:
        self.ours: dict[str, list[float]] = {}
        self.ref: dict[str, list[float]] = {}

    def add(self, name: str, ours: float | th.Tensor, ref: float | th.Tensor) -> None:
        self.ours.setdefault(name, []).append(float(ours))
        self.ref.setdefault(name, []).append(float(ref))

    def __contains__(self, name: str) -> bool:
        return name in self.ours

    def mean(self, name: str) -> tuple[SeedStatistic, SeedStatistic]:
        return SeedStatistic.mean_of(self.ours[name]), SeedStatistic.mean_of(self.ref[name])


def compare_over_seeds(
    report: Report,
    method: str,
    quantity: str,
    parts: Sequence[tuple[str, SeedStatistic, SeedStatistic]],
    keys: Sequence[str] = (),
    unexplained: str = "",
    note: str = "",
) -> Result:
    """Compare statistics over seeds (or other random draws), ``(label, ours, reference)`` each; the worst (relative
    to its tolerance) decides. The note gives every statistic on both sides with its standard error, then ``note``."""
    worst, worst_tol, within = 0.0, ATOL, True
    texts = []
    for label, ours, ref in parts:
        diff, tol = abs(ours.value - ref.value), seed_tolerance(ours, ref)
        within = within and diff <= tol
        if diff / tol >= worst / worst_tol:
            worst, worst_tol = diff, tol
        texts.append(
            f"{label}: ours {ours.value:.4g} (se {ours.error:.1g}), reference {ref.value:.4g} (se {ref.error:.1g})"
        )
    note = "; ".join([*texts, *([note] if note else [])])
    if within:
        return report.add(Result(method, quantity, EQUAL, worst, worst_tol, note=note))
    if keys:
        return report.add(Result(method, quantity, DELIBERATE_STATUS, worst, worst_tol, tuple(keys), note))
    text = "; ".join(part for part in (note, unexplained) if part)
    return report.add(Result(method, quantity, UNEXPLAINED, worst, worst_tol, note=text))


def init_sources(role: ParamRole) -> str:
    """Where each code base initialises the parameter of ``role`` (for an unexplained difference)."""
    name = role.ref
    ours = f"ours: {role.ours}"
    if name.startswith("encoder.agg.encoder."):
        return (
            f"{ours} (sb3_hypernet/recurrent.py HistoryEncoder: orthogonal weights, zero biases); reference: {name} "
            "(models/aggregator.py Aggregator.init_rnn)"
        )
    if name == "policy.critic_linear.bias":
        return (
            f"{ours} (sb3_hypernet/policies.py MetaRecurrentPolicy._build -> initializers.py init_base_linear "
            "'critic': bias 0); reference: models/policy.py Policy.__init__ critic_linear = nn.Linear(hidden, 1), "
            "PyTorch's default bias U(+-1/sqrt(fan_in))"
        )
    if name == "policy.hyper_final_to_critic_linear_bias.bias":
        return (
            f"{ours}[:, in, cond] (sb3_hypernet/hypernet.py init_generated_heads_ 'bias': the bias heads' biases 0); "
            "reference: models/policy.py hyper_bias_layer_init(weight_for_uniform=torch.zeros((hidden_layers[-1], "
            "1))): fan_in of a (hidden, 1) tensor is 1, so the generated value bias starts U(-1, 1)"
        )
    if name == "policy.hyper_final_to_critic_linear_weight.bias":
        return (
            f"{ours}[:, :in, cond] (sb3_hypernet/initializers.py base_weight_ 'critic': kaiming_uniform_(a=sqrt(5)), "
            "U(+-1/sqrt(fan_in))); reference: models/policy.py hyper_weight_layer_init -> init_hyper_match "
            "'kaiming' with adjust_init_b_gain False -> kaiming_uniform_ignore_gain = nn.init.kaiming_uniform_(a=0), "
            "U(+-sqrt(6/fan_in))"
        )
    if name.startswith("policy.hyper_final_to_"):
        return (
            f"{ours} (sb3_hypernet/hypernet.py init_generated_heads_, initializers.py base_weight_); reference: "
            f"{name} (models/policy.py hyper_weight_layer_init, hyper_bias_layer_init, init_hyper_match)"
        )
    if name.startswith(("policy.actor_layers", "policy.critic_layers", "policy.dist")):
        return (
            f"{ours} (sb3_hypernet/heads.py _mlp, policies.py _build -> initializers.py init_base_linear); "
            f"reference: {name} (models/policy.py Policy.__init__ init_, Categorical/DiagGaussian)"
        )
    return (
        f"{ours} (PyTorch's nn.Linear default); reference: {name} (nn.Linear default: utils/helpers.py "
        "FeatureExtractor, models/aggregator.py, models/decoder.py)"
    )


def parameter_draws(draws: SeedDraws, roles: Sequence[ParamRole], policy: Any, ref_model: ReferenceModel) -> None:
    """Mean and standard deviation of each parameter's entries (in the reference's layout), both sides."""
    parameters = dict(policy.named_parameters())
    for role in roles:
        ours = role.take(parameters[role.ours].detach()).double()
        ref = ref_model.parameter(role.ref).detach().double()
        draws.add(f"{role.ref}:mean", ours.mean(), ref.mean())
        if ref.numel() > 1:
            draws.add(f"{role.ref}:std", ours.std(unbiased=False), ref.std(unbiased=False))
        else:  # one entry (a generated value bias): its size, whose mean over seeds tells a spread from a constant
            draws.add(f"{role.ref}:abs", ours.abs().mean(), ref.abs().mean())


def initial_phase(policy: Any) -> tuple[str, str]:
    """(our phase, what the policy conditions on) right after construction: the multi-task phase for the models
    that pre-train (as the reference's first updates, before task_num_warmup), else the latent."""
    if getattr(policy, "pretrains", False) and policy.in_pretraining:
        return "pre-training", "task"
    return "", "latent"


def our_generated_norms(policy: Any, condition_embedding: th.Tensor) -> dict[str, th.Tensor]:
    """Per generated base layer (critic, then actor): the mean per-sample norm of its generated weight and bias."""
    from sb3_hypernet.common.generated_layers import GeneratedLinear

    head = policy.mlp_extractor
    if not head.generates_outputs or not isinstance(head.actor.layers[0], GeneratedLinear):
        return {}
    out: dict[str, th.Tensor] = {}
    with th.no_grad():
        for side in ("critic", "actor"):
            network = getattr(head, side)
            z = network.hypernet_trunk(condition_embedding)
            for index, layer in enumerate(network.layers):
                weight, bias = layer.generate(z)
                out[f"{side} {index}: weight"] = weight.flatten(1).norm(dim=1).mean()
                out[f"{side} {index}: bias"] = bias.norm(dim=1).mean()
    return out


def reference_generated_norms(
    pair: Pair, state: th.Tensor, latent: th.Tensor, task: th.Tensor | None, condition: str
) -> dict[str, th.Tensor]:
    """The reference's generated base parameters (models/policy.py forward with return_base_params: the critic's,
    then the actor's, weight and bias per layer), as :func:`our_generated_norms` summarises ours."""
    policy, args = pair.ref_model.policy, pair.args
    if not policy.use_hyper or policy.use_film:
        return {}
    force = {}
    if args.task_chance is not None:
        force = {"force_task_input": True} if condition == "task" else {"force_latent_input": True}
    with th.no_grad(), pair.ref.distributions.active():
        _, _, params = policy(state, latent, None, task, return_base_params=True, training=True, update_num=0, **force)
    n_layers = len(policy.hidden_layers) + 1
    out = {}
    for side, chunk in (("critic", params[: 2 * n_layers]), ("actor", params[2 * n_layers :])):
        for index in range(n_layers):
            out[f"{side} {index}: weight"] = chunk[2 * index].norm(dim=1).mean()
            out[f"{side} {index}: bias"] = chunk[2 * index + 1].norm(dim=1).mean()
    return out


def functional_draws(draws: SeedDraws, pair: Pair) -> None:
    """The initial functions on the batch's aligned steps (1..T-1; ours reading episode_done 0, as the reference's
    encoder reads no flag): latent, condition embedding, action log-probabilities and entropy, values, and the
    generated base-network parameters of the hypernetwork methods."""
    episodes, policy = pair.episodes, pair.policy
    t_steps, n_seq = episodes.shape
    phase, condition = initial_phase(policy)
    obs = our_obs(episodes, 1, zero_done=True, keys=list(policy.observation_space.spaces))
    actions = flatten_steps(episodes.actions[1:])
    state = flatten_steps(episodes.obs["obs"][1:])
    task = flatten_steps(episodes.obs["task"][1:]) if "task" in episodes.obs else None
    with our_phase(policy, phase):
        ours = our_outputs(policy, obs, actions, n_seq)
        ours_generated = our_generated_norms(policy, ours["condition embedding"])
    pair.ref_model.ppo.update_index = 0
    with th.no_grad():
        mean, logvar = reference_latents(pair.ref_model, episodes)
    flat_mean, flat_logvar = flatten_steps(mean[1:t_steps]), flatten_steps(logvar[1:t_steps])
    ref = reference_outputs(pair.ref, pair.ref_model, state, flat_mean, flat_logvar, actions, task, condition)
    latent = pair.ref.helpers.get_latent_for_policy(
        pair.args, latent_sample=flat_mean, latent_mean=flat_mean, latent_logvar=flat_logvar
    )
    ref_generated = reference_generated_norms(pair, state, latent, task, condition)
    for name in ("latent", "condition embedding"):
        draws.add(f"{name}:mean", ours[name].mean(), ref[name].mean())
        draws.add(f"{name}:std", ours[name].std(), ref[name].std())
    logits = "action log-probabilities (logits)"
    if logits in ref:
        draws.add("log-probabilities:std", ours[logits].std(), ref[logits].std())
    draws.add("entropy:mean", ours["entropy per step"].mean(), ref["entropy per step"].mean())
    draws.add("values:mean", ours["values"].mean(), ref["values"].mean())
    draws.add("values:abs mean", ours["values"].mean().abs(), ref["values"].mean().abs())
    draws.add("values:std", ours["values"].std(), ref["values"].std())
    if set(ours_generated) != set(ref_generated):
        raise RuntimeError(f"generated layers differ: ours {sorted(ours_generated)}, reference {sorted(ref_generated)}")
    for name, value in ours_generated.items():
        draws.add(f"generated {name}", value, ref_generated[name])


def compare_initialisation(
    report: Report, ref: Reference, method: str, episodes: MetaEpisodes, seeds: Sequence[int]
) -> None:
    """Both sides' modules built fresh with their own initialisation, once per seed: per parameter role, the mean
    and standard deviation of the entries (for a one-entry parameter, its mean absolute value); the state embeddings
    at the width of the reference's own state; and the initial functions on the same batch."""
    spec = METHODS[method]
    draws, wide = SeedDraws(), SeedDraws()
    roles: list[ParamRole] = []
    for seed in seeds:
        model = build_our_model(spec, seed)  # seeded inside: the zoo's initialisation
        th.manual_seed(seed)
        _, ref_model = reference_model_for(ref, spec, model)
        roles = encoder_roles(*encoder_sizes(model.policy)) + policy_roles(model.policy)
        roles += belief_roles(model.policy, ref_model)[0]
        parameter_draws(draws, roles, model.policy, ref_model)
        pair = Pair(method, spec, ref, model, ref_model, roles, episodes, {}, seed)
        functional_draws(draws, pair)
        if spec.env_id == "GridNavi-v0":
            _, own_env_model = reference_model_for(ref, spec, model, env=gridnavi_stub(state_width=3))
            parameters = dict(model.policy.named_parameters())
            for role in roles:
                if role.ref in STATE_EMBEDDINGS:
                    ours = role.take(parameters[role.ours].detach()).double()
                    wide.add(
                        role.ref,
                        ours.std(unbiased=False),
                        own_env_model.parameter(role.ref).detach().double().std(unbiased=False),
                    )
    label = f"init ({len(seeds)} seeds)"
    for role in roles:
        parts = [("mean", *draws.mean(f"{role.ref}:mean"))]
        if f"{role.ref}:std" in draws:
            parts.append(("std", *draws.mean(f"{role.ref}:std")))
        else:
            parts.append(("mean |value|", *draws.mean(f"{role.ref}:abs")))
        compare_over_seeds(report, method, f"{label} {role.group}: {role.ref}", parts, unexplained=init_sources(role))
    if wide.ours:
        compare_over_seeds(
            report,
            method,
            f"{label} state embeddings' std, reference's own state width 3 (x, y, done)",
            [(name, *wide.mean(name)) for name in wide.ours],
            keys=("state-done-flag",),
            note=(
                "the reference's environment appends the inner episode's done flag to GridNavi's (x, y) whenever a "
                "task has several episodes (environments/wrappers.py VariBadWrapper.__init__ add_done_info, .step), "
                "so its state is 3 wide (metalearner.py: args.state_dim = observation_space.shape[0]) and its state "
                "embeddings (nn.Linear, U(+-1/sqrt(fan_in))) have fan-in 3; ours read (x, y) (fan-in 2: "
                "sb3_hypernet/recurrent.py obs_embedding, heads.py StateHead.state_embedding) and take the flag "
                "as a GRU input (episode_done). The other lines build the reference with our 2-wide state"
            ),
        )
    function = (
        "the function at init is built by the parameters above (lines that differ name their sources); ours: "
        "sb3_hypernet/policies.py, heads.py, hypernet.py; reference: models/policy.py, models/encoder.py"
    )
    compare_over_seeds(
        report,
        method,
        f"{label} function: latent, aligned steps",
        [
            ("mean", *draws.mean("latent:mean")),
            ("std", *draws.mean("latent:std")),
        ],
        unexplained=function,
    )
    compare_over_seeds(
        report,
        method,
        f"{label} function: condition embedding",
        [
            ("mean", *draws.mean("condition embedding:mean")),
            ("std", *draws.mean("condition embedding:std")),
        ],
        unexplained=function,
    )
    policy_parts = [("entropy", *draws.mean("entropy:mean"))]
    if "log-probabilities:std" in draws:
        policy_parts.insert(0, ("std of log-probabilities", *draws.mean("log-probabilities:std")))
    compare_over_seeds(report, method, f"{label} function: action distribution", policy_parts, unexplained=function)
    compare_over_seeds(
        report,
        method,
        f"{label} function: values",
        [
            ("batch mean", *draws.mean("values:mean")),
            ("|batch mean|", *draws.mean("values:abs mean")),
            ("std over the batch", *draws.mean("values:std")),
        ],
        unexplained=function,
    )
    for name in [name for name in draws.ours if name.startswith("generated ") and name.endswith(": weight")]:
        layer = name.removeprefix("generated ").removesuffix(": weight")
        compare_over_seeds(
            report,
            method,
            f"{label} function: generated {layer} (mean norm per sample)",
            [
                ("weight", *draws.mean(name)),
                ("bias", *draws.mean(name.replace(": weight", ": bias"))),
            ],
            unexplained=function,
        )


# ------------------------------------------------------------------------------------------------------------------
# Training loop: returns, reward normalisation, minibatches, schedules
# ------------------------------------------------------------------------------------------------------------------
#: The rollout of the training-loop comparisons: 16 envs x 60 steps (the grids' PPO settings), four rollouts of
#: rewards for the reward normaliser, and how many epochs of minibatches are drawn to describe their composition.
LOOP_ENVS, LOOP_STEPS, LOOP_ROLLOUTS, LOOP_DRAWS = 16, 60, 4, 50


@dataclasses.dataclass
class LoopData:
    """Rewards of GridNavi-v0 meta-episodes laid out as ``LOOP_ROLLOUTS`` consecutive rollouts of ``LOOP_ENVS`` envs:
    env e plays meta-episodes 4e .. 4e + 3 one after the other. ``rewards`` and ``dones`` (the step ended a
    meta-episode) are (LOOP_ROLLOUTS * LOOP_STEPS, LOOP_ENVS); ``values`` (same shape) and ``last_values``
    (LOOP_ENVS,) are seeded N(0, 1) draws standing for the critic's outputs."""

    rewards: np.ndarray
    dones: np.ndarray
    values: np.ndarray
    last_values: np.ndarray

    @classmethod
    def collect(cls, seed: int) -> LoopData:
        episodes = collect_meta_episodes("GridNavi-v0", LOOP_ENVS * LOOP_ROLLOUTS, seed)
        length = episodes.shape[0]
        if length != LOOP_STEPS:
            raise RuntimeError(f"GridNavi-v0 meta-episodes of {length} steps; the loop comparisons assume {LOOP_STEPS}")
        per_env = episodes.rewards[..., 0].numpy().reshape(length, LOOP_ENVS, LOOP_ROLLOUTS)
        rewards = per_env.transpose(2, 0, 1).reshape(LOOP_ROLLOUTS * length, LOOP_ENVS).astype(np.float32)
        dones = np.zeros_like(rewards, dtype=bool)
        dones[length - 1 :: length] = True
        rng = np.random.default_rng(seed + 5)
        values = rng.standard_normal(rewards.shape).astype(np.float32)
        return cls(rewards, dones, values, rng.standard_normal(LOOP_ENVS).astype(np.float32))

    def window(self, offsets: np.ndarray) -> tuple[np.ndarray, ...]:
        """A rollout of LOOP_STEPS steps starting at ``offsets[e]`` in env e: rewards, values, dones (each
        (LOOP_STEPS, LOOP_ENVS)), whether each env's first step starts a meta-episode, the values after the last
        step and whether the last step ended a meta-episode."""
        steps = offsets[None, :] + np.arange(LOOP_STEPS)[:, None]
        envs = np.arange(LOOP_ENVS)
        if int(steps.max()) >= len(self.rewards):
            raise ValueError("the window runs past the recorded rewards")
        first = np.where(offsets > 0, self.dones[np.maximum(offsets - 1, 0), envs], True)
        following = offsets + LOOP_STEPS
        inside = following < len(self.values)
        last_values = np.where(inside, self.values[np.minimum(following, len(self.values) - 1), envs], self.last_values)
        return (
            self.rewards[steps, envs[None, :]],
            self.values[steps, envs[None, :]],
            self.dones[steps, envs[None, :]],
            first,
            last_values.astype(np.float32),
        )


def reference_storage(ref: Reference, args: argparse.Namespace) -> Any:
    """The reference's rollout storage (algorithms/online_storage.py) for the loop's rollout."""
    return ref.online_storage.OnlineStorage(
        args=args,
        num_steps=LOOP_STEPS,
        num_processes=LOOP_ENVS,
        state_dim=args.state_dim,
        belief_dim=args.belief_dim,
        task_dim=args.task_dim,
        action_space=args.action_space,
        hidden_size=int(args.encoder_gru_hidden_size),
        latent_dim=args.latent_dim,
        normalise_rewards=args.norm_rew_for_policy,
    )


def reference_returns(
    ref: Reference, args: argparse.Namespace, window: tuple[np.ndarray, ...]
) -> tuple[th.Tensor, th.Tensor]:
    """(advantages, returns) (LOOP_STEPS, LOOP_ENVS) as the reference computes them: online_storage.py
    compute_returns with its settings (GAE, gamma, tau, proper time limits), advantages = returns - values as its
    PPO update takes them (algorithms/ppo.py update)."""
    rewards, values, dones, first, last_values = window
    storage = reference_storage(ref, args)
    as_column = lambda x: th.as_tensor(np.asarray(x, dtype=np.float32))[..., None]  # noqa: E731
    storage.rewards_raw.copy_(as_column(rewards))
    storage.rewards_normalised.copy_(as_column(rewards))
    storage.value_preds[:-1].copy_(as_column(values))
    storage.masks[0].copy_(as_column(1.0 - first))
    storage.masks[1:].copy_(as_column(1.0 - dones))
    storage.compute_returns(
        as_column(last_values),
        args.policy_use_gae,
        args.policy_gamma,
        args.policy_tau,
        use_proper_time_limits=args.use_proper_time_limits,
    )
    returns = storage.returns[:-1, :, 0]
    return returns - storage.value_preds[:-1, :, 0], returns


def our_returns(model: Any, window: tuple[np.ndarray, ...]) -> tuple[th.Tensor, th.Tensor]:
    """(advantages, returns) (LOOP_STEPS, LOOP_ENVS) as our training computes them: the zoo model's rollout buffer's
    compute_returns_and_advantage (SB3's GAE) on the same rewards, values and episode starts."""
    rewards, values, dones, first, last_values = window
    buffer = model.rollout_buffer
    buffer.reset()
    buffer.rewards[:] = rewards
    buffer.values[:] = values
    buffer.episode_starts[0] = first
    buffer.episode_starts[1:] = dones[:-1]
    buffer.compute_returns_and_advantage(th.as_tensor(last_values), dones[-1])
    out = th.as_tensor(buffer.advantages.copy()), th.as_tensor(buffer.returns.copy())
    buffer.reset()
    return out


class _ReplayVecEnv:
    """A vectorised environment that replays recorded rewards and dones (observations are zeros): what both code
    bases' reward normalisers wrap."""

    def __init__(self, rewards: np.ndarray, dones: np.ndarray):
        self.rewards, self.dones, self.t = rewards, dones, 0
        self.num_envs = rewards.shape[1]
        self.observation_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Discrete(5)

    def next(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        rewards, dones = self.rewards[self.t].copy(), self.dones[self.t].copy()
        self.t += 1
        return np.zeros((self.num_envs, 1), np.float32), rewards, dones, [{} for _ in range(self.num_envs)]


def our_reward_normaliser(model: Any, replay: _ReplayVecEnv) -> Any:
    """SB3's VecNormalize with the zoo model's settings (rl_zoo3 built it from the entry's ``normalize``), on the
    replay."""
    from stable_baselines3.common.vec_env import VecEnv, VecNormalize, unwrap_vec_normalize

    built = unwrap_vec_normalize(model.get_env())
    if built is None:
        raise RuntimeError("the zoo model has no VecNormalize")

    class Replay(VecEnv):
        def __init__(self) -> None:
            super().__init__(replay.num_envs, replay.observation_space, replay.action_space)

        def reset(self) -> np.ndarray:
            return np.zeros((self.num_envs, 1), np.float32)

        def step_async(self, actions: np.ndarray) -> None:
            pass

        def step_wait(self) -> Any:
            return replay.next()

        def close(self) -> None:
            pass

        def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
            return [None] * self.num_envs

        def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
            pass

        def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
            return [None] * self.num_envs

        def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
            return [False] * self.num_envs

    return VecNormalize(
        Replay(),
        training=True,
        norm_obs=False,
        norm_reward=built.norm_reward,
        clip_obs=built.clip_obs,
        clip_reward=built.clip_reward,
        gamma=built.gamma,
        epsilon=built.epsilon,
    )


def reference_reward_normaliser(ref: Reference, args: argparse.Namespace, replay: _ReplayVecEnv) -> Any:
    """The reference's VecNormalize as its make_vec_envs builds it for training (environments/parallel_envs.py:
    normalise_rew = norm_rew_for_policy, gamma = policy_gamma, cliprew = norm_rew_clip_param when the config has
    one, else 10), on the replay."""

    class Replay:
        num_envs, observation_space, action_space = replay.num_envs, replay.observation_space, replay.action_space

        def step_wait(self) -> Any:
            return replay.next()

        def reset(self, task: Any = None) -> np.ndarray:
            return np.zeros((self.num_envs, 1), np.float32)

    return ref.vec_normalize.VecNormalize(
        Replay(),
        normalise_rew=args.norm_rew_for_policy,
        ret_rms=None,
        gamma=0.99 if args.policy_gamma is None else args.policy_gamma,
        cliprew=args.norm_rew_clip_param if "norm_rew_clip_param" in vars(args) else 10.0,
    )


def normalised_rewards(model: Any, ref: Reference, args: argparse.Namespace, data: LoopData) -> dict[str, th.Tensor]:
    """Both reward normalisers on the same rewards and dones (all envs end their meta-episodes together, as in
    both trainings); the reference's loop resets every env after a meta-episode (metalearner.py train ->
    utils/helpers.py reset_env -> VecNormalize.reset, which zeroes every env's running return)."""
    ours_replay, ref_replay = _ReplayVecEnv(data.rewards, data.dones), _ReplayVecEnv(data.rewards, data.dones)
    ours_normaliser = our_reward_normaliser(model, ours_replay)
    ref_normaliser = reference_reward_normaliser(ref, args, ref_replay)
    ours_out, ref_out = [], []
    for _ in range(len(data.rewards)):
        ours_normaliser.step_async(np.zeros(LOOP_ENVS, dtype=np.int64))
        ours_out.append(ours_normaliser.step_wait()[1])
        _, (_, normalised), news, _ = ref_normaliser.step_wait()
        ref_out.append(normalised)
        if news.all():
            ref_normaliser.reset()
    as_tensor = lambda x: th.as_tensor(np.asarray(x, dtype=np.float64))  # noqa: E731
    return {
        "ours": as_tensor(ours_out),
        "reference": as_tensor(ref_out),
        "ours variance": as_tensor([ours_normaliser.ret_rms.var]),
        "reference variance": as_tensor([ref_normaliser.ret_rms.var]),
        "ours count": as_tensor([ours_normaliser.ret_rms.count]),
        "reference count": as_tensor([ref_normaliser.ret_rms.count]),
    }


@dataclasses.dataclass
class MinibatchLayout:
    """What one PPO epoch's minibatches hold, over many draws: per minibatch the number of tasks (envs), the steps
    per task, and the mean of the normalised advantages; per sampled step the history its encoder gradient reaches
    (steps back to where the GRU pass with gradient starts) against its whole history in the meta-episode."""

    tasks: list[int] = dataclasses.field(default_factory=list)
    steps_per_task: list[float] = dataclasses.field(default_factory=list)
    mean_advantage: list[float] = dataclasses.field(default_factory=list)
    reached: list[float] = dataclasses.field(default_factory=list)
    history: list[float] = dataclasses.field(default_factory=list)
    per_epoch: int = 0

    def add(self, env: th.Tensor, step: th.Tensor, advantages: th.Tensor, reached: th.Tensor) -> None:
        envs = env.long().unique()
        self.tasks.append(len(envs))
        self.steps_per_task.append(len(env) / len(envs))
        self.mean_advantage.append(float(advantages.mean()))
        self.reached += reached.tolist()
        self.history += (step + 1).tolist()

    def advantage_spread(self) -> SeedStatistic:
        """The standard deviation over minibatches of a minibatch's mean advantage, with its standard error."""
        values = np.asarray(self.mean_advantage, dtype=np.float64)
        spread = float(values.std(ddof=1))
        return SeedStatistic(spread, spread / math.sqrt(2.0 * (len(values) - 1)))

    def summary(self, encoder_gradient: bool) -> str:
        """The layout in words; ``encoder_gradient``: with the history the encoder gradient reaches (only where the
        RL loss trains the encoder)."""
        tasks = np.array(self.tasks)
        text = (
            f"tasks per minibatch {tasks.mean():.2f} (min {tasks.min()}, max {tasks.max()}), steps per task "
            f"{np.mean(self.steps_per_task):.1f}, minibatch mean of the normalised advantages: std "
            f"{np.std(self.mean_advantage):.3f} over minibatches"
        )
        if encoder_gradient:
            reached, history = np.array(self.reached), np.array(self.history)
            text += (
                f"; the encoder gradient reaches {reached.mean():.1f} of {history.mean():.1f} steps of history on "
                f"average ({np.mean(reached < history):.0%} of the steps cut short)"
            )
        return text


def our_minibatch_layout(model: Any, advantages: np.ndarray) -> MinibatchLayout:
    """Our update's minibatches (MetaRecurrentPPO._minibatches with the zoo entry's settings) on a rollout aligned
    with the meta-episodes (env e's id and the step in observation 'obs'), over LOOP_DRAWS epochs."""
    from sb3_contrib.common.recurrent.type_aliases import RNNStates

    buffer = model.rollout_buffer
    buffer.reset()
    hidden = th.zeros(buffer.hidden_state_shape[1:])
    states = RNNStates((hidden, hidden), (hidden, hidden))
    for t in range(LOOP_STEPS):
        obs = {
            key: np.zeros((LOOP_ENVS, *space.shape), np.float32)
            for key, space in model.observation_space.spaces.items()
        }
        obs["obs"][:, 0] = np.arange(LOOP_ENVS)
        obs["obs"][:, 1] = t
        buffer.add(
            obs,
            np.zeros((LOOP_ENVS, 1)),
            np.zeros(LOOP_ENVS, np.float32),
            np.full(LOOP_ENVS, float(t == 0), np.float32),
            th.zeros(LOOP_ENVS, 1),
            th.zeros(LOOP_ENVS),
            lstm_states=states,
        )
    buffer.compute_returns_and_advantage(th.zeros(LOOP_ENVS), np.ones(LOOP_ENVS, dtype=bool))
    buffer.advantages[:] = advantages
    layout = MinibatchLayout()
    saved, generator_state = np.random.get_state(), th.get_rng_state()
    for draw in range(LOOP_DRAWS):
        np.random.seed(draw)  # sequences: the split index
        th.manual_seed(draw)  # steps: the permutation
        minibatches = list(model._minibatches())
        layout.per_epoch = len(minibatches)
        for batch, select in minibatches:
            rows = th.nonzero(batch.mask > 1e-8).flatten() if select is None else select
            n_seq = batch.lstm_states.pi[0].shape[1]
            width = len(batch.mask) // n_seq
            obs = batch.observations["obs"]
            step = obs[rows, 1]
            # The GRU pass of a sequence starts at its first row, from the stored state (no gradient through it);
            # a sequence that starts a meta-episode has its whole history.
            position = (rows % width).double()
            starts_episode = batch.episode_starts[(rows // width) * width] > 0.5
            reached = th.where(starts_episode, step + 1, position + 1) if select is None else step + 1
            layout.add(obs[rows, 0], step, batch.advantages[rows], reached)
    np.random.set_state(saved)
    th.set_rng_state(generator_state)
    buffer.reset()
    return layout


def reference_minibatch_layout(ref: Reference, args: argparse.Namespace, advantages: np.ndarray) -> MinibatchLayout:
    """The reference's minibatches (online_storage.py feed_forward_generator: random steps across every env) on the
    same rollout, over LOOP_DRAWS epochs. With the RL loss through the encoder its PPO update re-runs the GRU over
    the whole rollout for every minibatch (algorithms/ppo.py update -> utils/helpers.py recompute_embeddings), so a
    sampled step's gradient reaches its whole history."""
    # Only the sampled indices matter: the storage carries the env id and the step as its "state" and nothing else
    # (the index draw, torch's randperm, does not depend on what is stored).
    args = copy.copy(args)
    args.pass_state_to_policy = True
    args.pass_latent_to_policy = args.pass_belief_to_policy = args.pass_task_to_policy = False
    args.decode_task = False
    rlloss_through_encoder = args.rlloss_through_encoder
    storage = reference_storage(ref, args)
    storage.prev_state[:-1, :, 0] = th.arange(LOOP_ENVS, dtype=th.float32)[None, :]
    storage.prev_state[:-1, :, 1] = th.arange(LOOP_STEPS, dtype=th.float32)[:, None]
    normalised = th.as_tensor(np.asarray(advantages, dtype=np.float32))[..., None]
    layout = MinibatchLayout()
    generator_state = th.get_rng_state()
    for draw in range(LOOP_DRAWS):
        th.manual_seed(draw)
        minibatches = list(storage.feed_forward_generator(normalised, args.ppo_num_minibatch))
        layout.per_epoch = len(minibatches)
        for sample in minibatches:
            state, advantage = sample[0], sample[-1]
            step = state[:, 1].double()
            reached = step + 1 if rlloss_through_encoder else th.zeros_like(step)
            layout.add(state[:, 0], step, advantage[:, 0], reached)
    th.set_rng_state(generator_state)
    return layout


def our_meta_episode_end(env_id: str, n_steps: int) -> tuple[th.Tensor, th.Tensor]:
    """Our environment stepped through one meta-episode as SB3 vectorises it: per step, whether the episode ended
    and whether SB3 bootstraps the value there (OnPolicyAlgorithm / RecurrentPPO collect_rollouts add gamma * V of
    the terminal observation when an episode is truncated: info['TimeLimit.truncated'])."""
    import gymnasium
    from stable_baselines3.common.vec_env import DummyVecEnv

    import envs  # noqa: F401  (registers the ids)

    venv = DummyVecEnv([lambda: gymnasium.make(env_id)])
    venv.seed(0)
    venv.reset()
    dones, bootstraps = [], []
    for _ in range(n_steps):
        _, _, done, infos = venv.step(np.array([1]))
        dones.append(float(done[0]))
        bootstraps.append(float(done[0] and infos[0].get("TimeLimit.truncated", False)))
    venv.close()
    return th.tensor(dones), th.tensor(bootstraps)


def learning_rates(model: Any, ref_model: ReferenceModel) -> tuple[th.Tensor, th.Tensor]:
    """The learning rates of the policy's and the encoder's optimisers at the start, the middle and the end of the
    run: ours (SB3's schedule; the end-to-end encoder's Adam follows it, a task-inference encoder's keeps its rate),
    the reference's (constant unless policy_anneal_lr; the encoder's optimiser anneals only with the RL loss through
    it: algorithms/ppo.py PPO.__init__, set_vae_optimizer)."""
    args = ref_model.args
    progress = (1.0, 0.5, 0.0)
    ours_encoder = model.inference_optimizer
    ours = [model.lr_schedule(p) for p in progress]
    if ours_encoder is not None:
        ours += [
            model.lr_schedule(p) if model.separate_encoder_optimizer else ours_encoder.param_groups[0]["lr"]
            for p in progress
        ]
    ref_encoder_lr = ref_model.vae.optimiser_vae.param_groups[0]["lr"]
    anneal = lambda lr, p, on: lr * p if on else lr  # noqa: E731  (LambdaLR: 1 - updates done / updates)
    ref = [anneal(args.lr_policy, p, args.policy_anneal_lr) for p in progress]
    if ours_encoder is not None:
        ref += [anneal(ref_encoder_lr, p, args.policy_anneal_lr and args.rlloss_through_encoder) for p in progress]
    return th.tensor(ours, dtype=th.float64), th.tensor(ref, dtype=th.float64)


def compare_training_loop(report: Report, ref: Reference, method: str, data: LoopData, seed: int) -> None:
    """The parts of a training iteration that the module comparisons skip, on the same rollout data: GAE returns
    and advantages, the episode end's value bootstrap, the reward normaliser, learning-rate schedules, and the
    minibatches of a PPO epoch (described, with the differences documented)."""
    spec = METHODS[method]
    model = build_our_model(spec, seed)
    th.manual_seed(seed)
    args, ref_model = reference_model_for(ref, spec, model)
    settings = (
        f"ours gamma {model.gamma:g}, GAE lambda {model.gae_lambda:g}; reference policy_gamma {args.policy_gamma:g}, "
        f"policy_tau {args.policy_tau:g}, policy_use_gae {args.policy_use_gae}, use_proper_time_limits "
        f"{args.use_proper_time_limits}"
    )
    where = (
        "ours: the rollout buffer's compute_returns_and_advantage (stable_baselines3 RolloutBuffer); reference: "
        "algorithms/online_storage.py OnlineStorage.compute_returns"
    )
    aligned = np.zeros(LOOP_ENVS, dtype=np.int64)
    shifted = (7 * np.arange(LOOP_ENVS) + 5) % LOOP_STEPS
    for label, offsets in (("one meta-episode per env", aligned), ("meta-episodes ending inside", shifted)):
        window = data.window(offsets)
        ours_adv, ours_ret = our_returns(model, window)
        ref_adv, ref_ret = reference_returns(ref, args, window)
        report.compare(
            method,
            f"loop: GAE advantages and returns, rollout of {label}",
            [(ours_adv, ref_adv), (ours_ret, ref_ret)],
            unexplained=f"{where}; {settings}",
            note=settings if label.startswith("one") else "",
        )

    # --- the value bootstrap where a meta-episode ends ------------------------------------------------------------
    episode_steps = args.max_trajectory_len
    ours_done, ours_bootstrap = our_meta_episode_end(spec.env_id, episode_steps)
    ref_done = th.zeros(episode_steps)
    ref_done[-1] = 1.0  # VariBadWrapper.step: done only after max_rollouts_per_task inner episodes
    ref_bootstrap = ref_done * float(args.use_proper_time_limits)  # masks 0 at done; bad_masks only with proper limits
    report.compare(
        method,
        "loop: meta-episode end (done) and its value bootstrap",
        [(ours_done, ref_done), (ours_bootstrap, ref_bootstrap)],
        note=(
            "neither bootstraps the value where a meta-episode ends: ours ends it with terminated=True "
            "(sb3_hypernet/wrappers.py MetaEpisodeWrapper.step), so SB3 adds no gamma * V(terminal); the reference's "
            "masks are 0 there and use_proper_time_limits is "
            f"{args.use_proper_time_limits} (online_storage.py _compute_returns)"
        ),
        unexplained=(
            "ours: sb3_hypernet/wrappers.py MetaEpisodeWrapper.step; reference: environments/wrappers.py "
            "VariBadWrapper.step"
        ),
    )

    # --- reward normalisation -----------------------------------------------------------------------------------
    rewards = normalised_rewards(model, ref, args, data)
    first_end = int(np.flatnonzero(data.dones[:, 0])[0])
    relative = float(
        ((rewards["ours"] - rewards["reference"]).abs() / rewards["reference"].abs().clamp(min=1e-8)).max()
    )
    reward_source = (
        "SB3's VecNormalize.step_wait (stable_baselines3/common/vec_env/vec_normalize.py) adds the discounted return "
        "to the running statistics and then zeroes it where an episode ended (returns[dones] = 0), so a meta-episode's "
        "final return enters the statistics; the reference's VecNormalize.step_wait "
        "(environments/env_utils/vec_env/vec_normalize.py) zeroes it first (ret[news] = 0) and then updates, so its "
        f"statistics take a 0 at each meta-episode end (1 of {LOOP_STEPS} steps) instead. Both: variance of the "
        "running discounted return (mean not subtracted from the reward), epsilon 1e-8, clip 10, count from 1e-4"
    )
    report.compare(
        method,
        f"loop: normalised rewards before the first meta-episode end (steps 1..{first_end})",
        (rewards["ours"][:first_end], rewards["reference"][:first_end]),
        keys=("reward-normaliser-order",),
        note=reward_source,
    )
    report.compare(
        method,
        f"loop: normalised rewards, {LOOP_ROLLOUTS} rollouts of {LOOP_ENVS} x {LOOP_STEPS}",
        (rewards["ours"], rewards["reference"]),
        keys=("reward-normaliser-order",),
        note=reward_source
        + "; "
        + (
            f"largest normalised reward: ours {float(rewards['ours'].abs().max()):.4g}, reference "
            f"{float(rewards['reference'].abs().max()):.4g}; relative difference up to {relative:.2%}"
        ),
    )
    report.compare(
        method,
        f"loop: variance of the discounted return after {LOOP_ROLLOUTS} rollouts",
        [
            (rewards["ours variance"], rewards["reference variance"]),
            (rewards["ours count"], rewards["reference count"]),
        ],
        keys=("reward-normaliser-order",),
        note=reward_source
        + "; "
        + (
            f"variance: ours {float(rewards['ours variance'][0]):.5g}, reference "
            f"{float(rewards['reference variance'][0]):.5g}; count {float(rewards['ours count'][0]):.6g} both"
        ),
    )

    # --- learning rates ------------------------------------------------------------------------------------------
    ours_lr, ref_lr = learning_rates(model, ref_model)
    report.compare(
        method,
        "loop: learning rates at progress 0, 0.5, 1 (policy; encoder)",
        (ours_lr, ref_lr),
        unexplained=(
            "ours: the zoo entry's learning_rate schedule (and separate_encoder_optimizer); reference: lr_policy, "
            "lr_vae or lr_policy (vae.py), policy_anneal_lr (algorithms/ppo.py)"
        ),
    )

    # --- minibatches ---------------------------------------------------------------------------------------------
    aligned_window = data.window(aligned)
    zero_values = (
        aligned_window[0],
        np.zeros_like(aligned_window[1]),
        *aligned_window[2:4],
        np.zeros(LOOP_ENVS, np.float32),
    )
    raw, _ = reference_returns(ref, args, zero_values)
    advantages = ((raw - raw.mean()) / (raw.std() + 1e-5)).numpy()
    ours_layout = our_minibatch_layout(model, advantages)
    trains_encoder = bool(model.policy.end_to_end and args.rlloss_through_encoder)
    ref_layout = reference_minibatch_layout(ref, args, advantages)
    report.compare(
        method,
        "loop: gradient steps per update (epochs x minibatches)",
        (
            th.tensor(float(model.n_epochs * ours_layout.per_epoch)),
            th.tensor(float(args.ppo_num_epochs * ref_layout.per_epoch)),
        ),
        unexplained="ours: n_epochs, batch_size; reference: ppo_num_epochs, ppo_num_minibatch",
    )
    layout_note = (
        f"rollout of {LOOP_ENVS} envs x {LOOP_STEPS} steps (one meta-episode each), advantages of the rollout's "
        f"rewards with values 0, normalised over the batch, {LOOP_DRAWS} epochs drawn; ours "
        f"(minibatch_sampling={model.minibatch_sampling!r}, batch_size {model.batch_size}): "
        f"{ours_layout.summary(trains_encoder)}; reference (feed_forward_generator, {args.ppo_num_minibatch} "
        f"minibatches): {ref_layout.summary(trains_encoder)}"
    )
    # Both samplers draw at random: each statistic is held to INIT_Z standard errors over the minibatches drawn.
    keys = ("minibatch-composition",)
    compare_over_seeds(
        report,
        method,
        "loop: tasks (envs) per PPO minibatch",
        [("tasks", SeedStatistic.mean_of(ours_layout.tasks), SeedStatistic.mean_of(ref_layout.tasks))],
        keys=keys,
        note=layout_note,
    )
    compare_over_seeds(
        report,
        method,
        "loop: minibatch mean of the normalised advantages (std over minibatches)",
        [("std", ours_layout.advantage_spread(), ref_layout.advantage_spread())],
        keys=keys,
    )
    if trains_encoder:
        keys = ("sequence-cut", "minibatch-composition")
        compare_over_seeds(
            report,
            method,
            "loop: history steps each sampled step's encoder gradient reaches",
            [("steps", SeedStatistic.mean_of(ours_layout.reached), SeedStatistic.mean_of(ref_layout.reached))],
            keys=keys,
        )


# ------------------------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------------------------
def our_commit() -> str:
    """Our code's commit (noting uncommitted changes to the compared code: the package, envs, zoo configs), or
    where it was read from."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "sb3_hypernet", "envs", "zoo_configs"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return head + (" +uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        exported = REPO_ROOT / ".commit"
        return exported.read_text().strip() + " (exported tree)" if exported.is_file() else f"{REPO_ROOT} (no git)"


def markdown(command: str, report: Report, seconds: float, ref: Reference, threads: int) -> str:
    """The report as markdown: how it was made, the lines, the settings set to ours, the deliberate differences."""
    results = report.results
    machine = f"{platform.machine()} {platform.processor() or ''}".strip()
    lines = [
        "# Parity with the reference implementation (jacooba/hyper): modules, initialisation, training loop",
        "",
        f"`{command}`",
        "",
        f"- machine: {machine}, {os.cpu_count()} CPU cores; torch {th.__version__}, {threads} torch thread(s)",
        f"- reference: {ref.path} at {ref.commit}; ours: {our_commit()}",
        f"- run time: {seconds:.0f} s",
        f"- tolerance: |ours - reference| <= {ATOL:g} + {RTOL:g} * max|reference|, per tensor (float32); "
        f"{VAE_RTOL:g} for the VAE's reconstruction terms and totals (sums of thousands), {VAE_GRAD_RTOL:g} for its "
        "gradients; statistics over random draws (init lines: seeds; the loop's minibatch lines: minibatches): "
        f"{INIT_Z:g} standard errors of the difference of their means",
        "",
        "```",
        *(format_result(result) for result in results),
        summary_line(results),
        "```",
        "",
        "Reference settings set to ours (the searched or tuned hyperparameters; the reference's own value first):",
        "",
        *(f"- {line}" for line in report.settings),
        "",
        "Deliberate differences (the keys above):",
        "",
        *(f"- `{key}`: {text}" for key, text in DELIBERATE.items()),
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Compare, print the report and the summary line, and write --out."""
    parser = build_parser()
    options = parser.parse_args(argv)
    unknown = [method for method in options.methods if method not in METHODS]
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    reference_path = Path(options.reference)
    problems = reference_problems(reference_path)
    if problems:
        parser.error(
            f"--reference {reference_path} is not a checkout of jacooba/hyper (github.com/jacooba/hyper): "
            + "; ".join(problems)
        )
    set_threads(options.threads)
    start = time.perf_counter()
    ref = load_reference(reference_path)
    report = Report()
    episodes: dict[str, MetaEpisodes] = {}

    def batch_of(method: str) -> MetaEpisodes:
        env_id = METHODS[method].env_id
        if env_id not in episodes:
            if env_id.startswith("GridNavi"):
                episodes[env_id] = collect_meta_episodes(env_id, options.meta_episodes, options.seed)
            else:
                episodes[env_id] = synthetic_meta_episodes(env_id, options.mujoco_meta_episodes, options.seed)
        return episodes[env_id]

    if "modules" in options.sections:
        for method in options.methods:
            compare_method(report, ref, method, batch_of(method), options.seed)
    init_methods = [method for method in options.methods if method in INIT_METHODS]
    if "init" in options.sections and options.init_seeds > 0:
        seeds = [options.seed + 100 + k for k in range(options.init_seeds)]
        for method in init_methods:
            compare_initialisation(report, ref, method, batch_of(method), seeds)
    if "loop" in options.sections and init_methods:
        data = LoopData.collect(options.seed)
        for method in init_methods:
            compare_training_loop(report, ref, method, data, options.seed)
    seconds = time.perf_counter() - start
    print(summary_line(report.results))
    print("\nReference settings set to ours (searched or tuned):")
    for line in report.settings:
        print(f"  {line}")
    print("\nDeliberate differences:")
    for line in deliberate_table():
        print(f"  {line}")
    if options.out:
        script = "benchmarks/reference/reference_parity.py"
        command = shlex.join(["python", script, *(sys.argv[1:] if argv is None else argv)])
        Path(options.out).parent.mkdir(parents=True, exist_ok=True)
        Path(options.out).write_text(markdown(command, report, seconds, ref, options.threads))


if __name__ == "__main__":
    main()
