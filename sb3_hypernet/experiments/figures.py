"""Figures and tables of a sweep's study: learning curves, adaptation curves and rliable's aggregate metrics with
confidence intervals over seeds, and the best learning rate per method. The command line is :mod:`sb3_hypernet.plot`."""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from sb3_hypernet.experiments.labels import method_colour, method_label
from sb3_hypernet.experiments.sweep import GridPoint, completed_trials

#: The papers' error bar: 68% CIs over seeds.
CONFIDENCE = 0.68
RETURN_LABEL = "meta-episode return (deterministic)"
#: How the aggregate figures normalise: each env's final returns by its reference return where it has one.
NORMALISED_LABEL = "return / env's reference return"


@dataclass
class Run:
    """A completed run of a sweep: its grid point and learning curve (:class:`~sb3_hypernet.sweep.SweepWorker`)."""

    point: GridPoint
    curve: list[dict[str, Any]]

    @property
    def final(self) -> float:
        return float(self.curve[-1]["meta_return"]["mean"])

    @property
    def reference(self) -> float | None:
        reference = self.curve[-1].get("reference")
        return None if reference is None else float(reference["meta_return"])

    @property
    def reference_label(self) -> str:
        """What the env's reference return is ("Bayes-optimal", "optimal")."""
        return str((self.curve[-1].get("reference") or {}).get("label") or "reference")


def collect(study: optuna.Study) -> list[Run]:
    """The completed runs of a study that reported a curve."""
    runs = [Run(point, trial.user_attrs.get("curve") or []) for point, trial in completed_trials(study).items()]
    return [run for run in runs if run.curve]


def _groups(runs: list[Run]) -> dict[tuple[str, str, float], list[Run]]:
    groups: dict[tuple[str, str, float], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.point.method, run.point.env, run.point.learning_rate), []).append(run)
    return groups


def best_learning_rates(runs: list[Run]) -> dict[tuple[str, str], float]:
    """Per (method, env), the learning rate with the best mean final return over its seeds."""
    best: dict[tuple[str, str], tuple[float, float]] = {}
    for (method, env, lr), group in _groups(runs).items():
        mean = float(np.mean([run.final for run in group]))
        if (method, env) not in best or mean > best[(method, env)][1]:
            best[(method, env)] = (lr, mean)
    return {key: lr for key, (lr, _) in best.items()}


def _best_groups(runs: list[Run]) -> list[tuple[tuple[str, str, float], list[Run]]]:
    """The runs of each (method, env) at its best learning rate, sorted."""
    best = best_learning_rates(runs)
    return [(key, group) for key, group in sorted(_groups(runs).items()) if best[key[:2]] == key[2]]


@contextlib.contextmanager
def _quiet_arch() -> Iterator[None]:
    """rliable seeds arch's bootstrap with a RandomState, which arch 7 warns about on every call."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


def interval(values: np.ndarray, confidence: float, seed: int = 0) -> tuple[float, float, float]:
    """Mean over runs and its bootstrap CI (rliable; values: (runs,) or (runs, tasks))."""
    scores = np.asarray(values, dtype=float).reshape(len(values), -1)
    if len(scores) == 1:
        value = float(scores.mean())
        return value, value, value
    from rliable import library as rly

    with _quiet_arch():
        point, ci = rly.get_interval_estimates(
            {"x": scores},
            lambda x: np.array([np.mean(x)]),
            reps=2000,
            confidence_interval_size=confidence,
            random_state=np.random.RandomState(seed),
        )
    return float(point["x"][0]), float(ci["x"][0, 0]), float(ci["x"][1, 0])


def learning_curve_data(runs: list[Run], confidence: float = CONFIDENCE) -> dict[str, dict[str, Any]]:
    """Per env: the reference, and per method its best learning rate and the curve (frames, mean, CI) over seeds."""
    data: dict[str, dict[str, Any]] = {}
    for (method, env, lr), group in _best_groups(runs):
        n_points = min(len(run.curve) for run in group)
        frames, means, lows, highs = [], [], [], []
        for i in range(n_points):
            frames.append(int(np.mean([run.curve[i]["frames"] for run in group])))
            mean, low, high = interval(np.array([run.curve[i]["meta_return"]["mean"] for run in group]), confidence)
            means.append(mean), lows.append(low), highs.append(high)
        entry = data.setdefault(
            env, {"reference": group[0].reference, "reference_label": group[0].reference_label, "methods": {}}
        )
        entry["methods"][method] = {
            "learning_rate": lr,
            "seeds": sorted(run.point.seed for run in group),
            "frames": frames,
            "mean": means,
            "ci_low": lows,
            "ci_high": highs,
        }
    return data


def adaptation_data(runs: list[Run], confidence: float = CONFIDENCE) -> dict[str, dict[str, Any]]:
    """Per env and method (best learning rate): the mean return of each inner episode at the last checkpoint."""
    data: dict[str, dict[str, Any]] = {}
    for (method, env, lr), group in _best_groups(runs):
        per_episode = np.array([[e["mean"] for e in run.curve[-1]["inner_returns"]] for run in group])
        stats = [interval(per_episode[:, k], confidence) for k in range(per_episode.shape[1])]
        reference = group[0].curve[-1].get("reference")
        entry = data.setdefault(
            env,
            {
                "reference": reference and reference["inner_returns"],
                "reference_label": group[0].reference_label,
                "methods": {},
            },
        )
        entry["methods"][method] = {
            "learning_rate": lr,
            "seeds": sorted(run.point.seed for run in group),
            "mean": [s[0] for s in stats],
            "ci_low": [s[1] for s in stats],
            "ci_high": [s[2] for s in stats],
        }
    return data


def aggregate_data(runs: list[Run], confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Across envs (methods with a run on every env): IQM and mean of the final returns at each method's best
    learning rate, normalised by each env's reference where it has one, with rliable's stratified bootstrap CIs;
    and the performance profile."""
    from rliable import library as rly
    from rliable import metrics

    best = best_learning_rates(runs)
    envs = sorted({run.point.env for run in runs})
    scores: dict[str, np.ndarray] = {}
    for method in sorted({run.point.method for run in runs}):
        columns = []
        for env in envs:
            finals = [
                r
                for r in runs
                if (r.point.method, r.point.env) == (method, env) and r.point.learning_rate == best.get((method, env))
            ]
            if not finals:
                break
            reference = finals[0].reference
            columns.append([r.final / reference if reference else r.final for r in finals])
        else:
            n = min(len(c) for c in columns)
            scores[method] = np.array([c[:n] for c in columns], dtype=float).T  # (runs, envs)
    if not scores:
        return {}
    aggregate = lambda x: np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x)])  # noqa: E731
    with _quiet_arch():
        point, ci = rly.get_interval_estimates(
            scores, aggregate, reps=2000, confidence_interval_size=confidence, random_state=np.random.RandomState(0)
        )
    everything = np.concatenate([s.ravel() for s in scores.values()])
    taus = np.linspace(min(0.0, everything.min()), max(1.0, everything.max()), 51)
    profiles, profile_cis = rly.create_performance_profile(scores, taus, reps=500, confidence_interval_size=confidence)
    return {
        "envs": envs,
        "normalised_by_reference": [any(r.reference for r in runs if r.point.env == env) for env in envs],
        "methods": {
            m: {
                "iqm": float(point[m][0]),
                "iqm_ci": [float(ci[m][0, 0]), float(ci[m][1, 0])],
                "mean": float(point[m][1]),
                "mean_ci": [float(ci[m][0, 1]), float(ci[m][1, 1])],
                "runs": int(scores[m].shape[0]),
            }
            for m in scores
        },
        "taus": taus.tolist(),
        "profiles": {m: profiles[m].tolist() for m in scores},
        "profile_ci": {m: profile_cis[m].tolist() for m in scores},
    }


def learning_rate_table(runs: list[Run], confidence: float = CONFIDENCE) -> str:
    """Markdown: mean final return (CI over seeds) of every learning rate per method and env; best in bold."""
    best = best_learning_rates(runs)
    ci_label = f"{confidence:.0%} CI"
    lines = [f"| method | env | learning rate | seeds | final return | {ci_label} |", "|---|---|---|---|---|---|"]
    for (method, env, lr), group in sorted(
        _groups(runs).items(), key=lambda item: (item[0][1], item[0][0], -item[0][2])
    ):
        mean, low, high = interval(np.array([run.final for run in group]), confidence)
        cell = f"**{mean:.2f}** (best)" if best[(method, env)] == lr else f"{mean:.2f}"
        lines.append(f"| {method} | {env} | {lr:g} | {len(group)} | {cell} | [{low:.2f}, {high:.2f}] |")
    return "\n".join(lines) + "\n"


def _save(figure: Any, out: Path, name: str) -> list[Path]:
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    for path in paths:
        figure.savefig(path, bbox_inches="tight", dpi=120)
    return paths


def make_figures(study: optuna.Study, out: str | Path, confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Write every figure, the table and ``figures.json`` for ``study`` to ``out``; returns the figures' data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = collect(study)
    if not runs:
        raise ValueError(f"study {study.study_name!r} has no completed run with a learning curve yet")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = {
        "study": study.study_name,
        "confidence": confidence,
        "learning_curves": learning_curve_data(runs, confidence),
        "adaptation": adaptation_data(runs, confidence),
        "aggregate": aggregate_data(runs, confidence),
    }
    written: list[Path] = []

    band = f"{confidence:.0%} bootstrap CI"
    envs = sorted(data["learning_curves"])
    figure, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 3.6), squeeze=False)
    for ax, env in zip(axes[0], envs, strict=True):
        entry = data["learning_curves"][env]
        for method, curve in entry["methods"].items():
            label = f"{method_label(method)} (lr {curve['learning_rate']:g}, {len(curve['seeds'])} seeds)"
            line = ax.plot(curve["frames"], curve["mean"], label=label, color=method_colour(method))[0]
            ax.fill_between(curve["frames"], curve["ci_low"], curve["ci_high"], color=line.get_color(), alpha=0.2)
        if entry["reference"] is not None:
            ax.axhline(entry["reference"], color="black", linestyle="--", linewidth=1, label=entry["reference_label"])
        ax.set(title=env, xlabel="environment frames", ylabel=RETURN_LABEL)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
        ax.legend(fontsize=7)
    figure.suptitle(f"Learning curves at each method's best learning rate: mean over seeds, band {band}", fontsize=9)
    figure.tight_layout()
    written += _save(figure, out, "learning_curves")
    plt.close(figure)

    figure, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 3.6), squeeze=False)
    for ax, env in zip(axes[0], envs, strict=True):
        entry = data["adaptation"][env]
        methods = list(entry["methods"])
        width = 0.8 / max(len(methods), 1)
        for i, method in enumerate(methods):
            values = entry["methods"][method]
            x = np.arange(len(values["mean"])) + i * width
            errors = [np.subtract(values["mean"], values["ci_low"]), np.subtract(values["ci_high"], values["mean"])]
            label = f"{method_label(method)} ({len(values['seeds'])} seeds)"
            ax.bar(x, values["mean"], width, yerr=errors, label=label, capsize=2, color=method_colour(method))
        if entry["reference"]:
            ax.plot(np.arange(len(entry["reference"])) + 0.4 - width / 2, entry["reference"], "k_", markersize=20,
                    label=entry["reference_label"])  # fmt: skip
        n_episodes = max(len(v["mean"]) for v in entry["methods"].values())
        ticks = np.arange(n_episodes) + 0.4 - width / 2
        ax.set(title=env, xlabel="inner episode", ylabel="return in the inner episode", xticks=ticks,
               xticklabels=range(1, n_episodes + 1))  # fmt: skip
        ax.legend(fontsize=7)
    figure.suptitle(f"Adaptation of the final models: mean over seeds, bars {band}", fontsize=9)
    figure.tight_layout()
    written += _save(figure, out, "adaptation")
    plt.close(figure)

    if data["aggregate"]:
        from rliable import plot_utils

        aggregate = data["aggregate"]
        methods = list(aggregate["methods"])
        figure, axes = plt.subplots(1, 2, figsize=(10, 3.2))
        for ax, metric in zip(axes, ["iqm", "mean"], strict=True):
            values = [aggregate["methods"][m][metric] for m in methods]
            cis = np.array([aggregate["methods"][m][f"{metric}_ci"] for m in methods])
            for row, method in enumerate(methods):
                ax.errorbar(values[row], row, xerr=[[values[row] - cis[row, 0]], [cis[row, 1] - values[row]]],
                            fmt="o", capsize=3, color=method_colour(method))  # fmt: skip
            ax.set(yticks=np.arange(len(methods)), yticklabels=[method_label(m) for m in methods],
                   title=metric.upper(), xlabel=NORMALISED_LABEL)  # fmt: skip
        figure.suptitle(f"Final returns over envs and seeds, {band} (stratified bootstrap)", fontsize=9)
        figure.tight_layout()
        written += _save(figure, out, "aggregate")
        plt.close(figure)
        figure, ax = plt.subplots(figsize=(5, 3.6))
        colours = {m: method_colour(m) for m in methods}
        plot_utils.plot_performance_profiles(
            {m: np.array(aggregate["profiles"][m]) for m in methods},
            np.array(aggregate["taus"]),
            performance_profile_cis={m: np.array(aggregate["profile_ci"][m]) for m in methods},
            colors=colours if all(colours.values()) else None,
            ax=ax,
        )
        ax.set(xlabel=NORMALISED_LABEL)
        ax.legend([method_label(m) for m in methods], fontsize=7)
        written += _save(figure, out, "performance_profile")
        plt.close(figure)

    table = learning_rate_table(runs, confidence)
    (out / "learning_rates.md").write_text(table)
    (out / "figures.json").write_text(json.dumps(data, indent=1))
    data["files"] = [str(p) for p in [*written, out / "learning_rates.md", out / "figures.json"]]
    data["table"] = table
    return data
