"""Tables that the pages generate from the code and the config files when the docs are built.

``.. registered-envs:: ENTRY_POINT ...``: a table of the meta-episode ids that ``import envs`` registers for the
given task-env entry points, read from gymnasium's registry when the docs are built, so the pages list exactly the
registered ids, their raw ``*Task-v0`` ids, inner episodes, steps and keyword arguments.

With the ``:reference:`` flag, a column gives the benchmark's known reference return per inner episode (what
:meth:`sb3_hypernet.MetaEpisodeWrapper.reference_returns` reports), for task envs whose class defines
``reference_returns``.

``.. public-api:: PACKAGE``: an autosummary table of everything in ``PACKAGE.__all__``, so the list stays the
package's.

``.. zoo-entries:: FILE ...``: for each rl_zoo3 hyperparameter file (a path from the repository root), the policy it
trains and the environment ids it has entries for.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import yaml
from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from gymnasium.envs.registration import registry
from sphinx.util.docutils import SphinxDirective

META_ENTRY_POINT = "sb3_hypernet.common.meta_episode:make_meta_env"


def _class_of(entry_point: str) -> type:
    module, _, name = entry_point.partition(":")
    return getattr(__import__(module, fromlist=[name]), name)


def _kwargs_text(kwargs: dict) -> str:
    return ", ".join(f"``{key}={value!r}``" for key, value in kwargs.items()) or "none"


def _reference_text(task_id: str, n_episodes: int) -> str:
    env = gym.make(task_id, disable_env_checker=True)
    try:
        known = env.unwrapped.reference_returns(n_episodes)
    finally:
        env.close()
    if known is None:
        return "not known"
    label, returns = known
    per_episode = ", ".join(f"{value:g}" for value in returns)
    return f"{label}: {per_episode} (meta-episode {sum(returns):.4g})"


def registered_rows(entry_points: list[str], reference: bool) -> list[list[str]]:
    import envs  # noqa: F401 (registers the ids)

    rows = []
    for env_id, spec in registry.items():
        if spec.entry_point != META_ENTRY_POINT:
            continue
        task_id = spec.kwargs["task_env_id"]
        task_spec = registry[task_id]
        if task_spec.entry_point not in entry_points:
            continue
        n_episodes = spec.kwargs["n_episodes"]
        row = [
            f"``{env_id}``",
            f"``{task_id}``",
            str(n_episodes),
            str(task_spec.max_episode_steps),
            _kwargs_text(task_spec.kwargs),
        ]
        if reference:
            has_reference = hasattr(_class_of(task_spec.entry_point), "reference_returns")
            row.append(_reference_text(task_id, n_episodes) if has_reference else "not known")
        rows.append(row)
    return rows


class RegisteredEnvs(SphinxDirective):
    required_arguments = 1
    final_argument_whitespace = True
    option_spec = {"reference": directives.flag}

    def run(self) -> list[nodes.Node]:
        entry_points = self.arguments[0].split()
        reference = "reference" in self.options
        rows = registered_rows(entry_points, reference)
        if not rows:
            raise self.error(f"no meta-episode id is registered for {', '.join(entry_points)}")
        header = ["id", "raw task id", "inner episodes", "steps per episode", "task env keywords"]
        if reference:
            header.append("reference return per inner episode")
        lines = _list_table(header, rows)
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=self.get_source_info()[0]), self.content_offset, container)
        return container.children


def _list_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines += [f"   * - {row[0]}"] + [f"     - {cell}" for cell in row[1:]]
    return lines


REPO_ROOT = Path(__file__).resolve().parents[2]


def zoo_rows(files: list[str]) -> list[list[str]]:
    rows = []
    for name in files:
        entries = yaml.safe_load((REPO_ROOT / name).read_text())
        policies = sorted({str(entry.get("policy", "")) for entry in entries.values()})
        ids = ", ".join(f"``{env_id}``" for env_id in entries)
        rows.append([f"``{name}``", ", ".join(f"``{policy}``" for policy in policies), ids])
    return rows


class ZooEntries(SphinxDirective):
    required_arguments = 1
    final_argument_whitespace = True

    def run(self) -> list[nodes.Node]:
        files = self.arguments[0].split()
        for name in files:
            self.env.note_dependency(str(REPO_ROOT / name))
        lines = _list_table(["file", "policy", "entries (environment ids)"], zoo_rows(files))
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=self.get_source_info()[0]), self.content_offset, container)
        return container.children


class PublicApi(SphinxDirective):
    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        package = self.arguments[0]
        names = __import__(package, fromlist=["__all__"]).__all__
        entries = [f"   ~{package}.{name}" for name in sorted(names, key=str.lower)]
        lines = [".. autosummary::", "   :nosignatures:", "", *entries]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=self.get_source_info()[0]), self.content_offset, container)
        return container.children


def setup(app):
    app.setup_extension("sphinx.ext.autosummary")
    app.add_directive("public-api", PublicApi)
    app.add_directive("registered-envs", RegisteredEnvs)
    app.add_directive("zoo-entries", ZooEntries)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
