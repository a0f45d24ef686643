"""The measured results of ``benchmarks/results/``, generated from the result files when the docs are built.

``.. result-files:: KIND``: one section per result file of that kind (``speed``, ``learning``, ``reference`` or
``sweeps``), sorted by name:

- a Markdown file (``*.md``) is parsed with MyST: its title becomes the section's title (nested under the page's
  heading), its command and machine lines render as written; relative links become plain text;
- a figure (``*.png``) is shown with a caption naming the file and the command that made it: the command of the
  README's row that names the figure, else the one in the Markdown file of the same stem;
- a JSON-lines file (``*.jsonl``) without a Markdown file of the same stem gets a summary table (the last checkpoint
  each seed reached), the command that reproduces one of its runs, rebuilt from the records' fields, and what the
  records say of the machine (they name none);
- ``sweeps``: the snapshot files (Optuna journals) and the command that plots them.

Every file of ``benchmarks/results/`` falls in one kind (:func:`kind_of`), so a new result file shows up by itself.
"""

from __future__ import annotations

import json
import re
import shlex
import statistics
from pathlib import Path

from docutils import nodes, utils
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS = REPO_ROOT / "benchmarks" / "results"
README = REPO_ROOT / "benchmarks" / "README.md"
KINDS = ("speed", "learning", "reference", "sweeps")

_TITLE = re.compile(r"^#\s+(.+?)\s*$")
_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\((?![a-z]+://)([^)]+)\)")
_COMMAND = re.compile(r"(?:^|`)(python (?:-m )?[\w./]+[^`\n]*)", re.MULTILINE)
_MACHINE = re.compile(r"machine|\bCPU\b|\bGPU\b|cores?\b", re.IGNORECASE)


# -- Reading the files -------------------------------------------------------------------------------------------------
def read_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def md_title(text: str) -> str | None:
    for line in text.splitlines():
        if line.strip():
            match = _TITLE.match(line)
            return match.group(1) if match else None
    return None


def commands_in(text: str) -> list[str]:
    """The ``python ...`` command lines of a Markdown text (in code blocks or inline code), in order."""
    return [match.group(1).strip() for match in _COMMAND.finditer(text)]


def readme_commands() -> list[str]:
    """Every command of benchmarks/README.md's tables (a cell may hold several, separated by ``;``)."""
    commands = []
    for line in README.read_text().splitlines():
        for cell in line.split("|"):
            commands += [c.strip().strip("`").strip() for c in re.findall(r"`python [^`]+`", cell)]
    return commands


def readme_command_naming(name: str) -> str | None:
    named = [command for command in readme_commands() if f"results/{name}" in command]
    return named[0] if named else None


def kind_of(path: Path) -> str:
    """Which section of the page a result file belongs to."""
    if path.parent != RESULTS:
        return "sweeps"
    if path.stem.startswith("reference_"):
        return "reference"
    md = path.with_suffix(".md")
    if md.is_file():
        commands = commands_in(md.read_text())
        if commands and "benchmarks/speed/" in commands[0] and " learning " not in commands[0]:
            return "speed"
        return "learning"
    jsonl = path.with_suffix(".jsonl")
    if jsonl.is_file():
        records = read_records(jsonl)
        if records and "python" in records[0] and "reference" in records[0]:
            return "reference"
        if records and any(key in records[0] for key in ("meta_return", "mean_return", "success_rate")):
            return "learning"
        return "speed"
    command = readme_command_naming(path.name) or ""
    return "speed" if "benchmarks/speed/" in command else "learning"


def result_stems(kind: str) -> list[str]:
    files = [path for path in RESULTS.iterdir() if path.is_file() and path.suffix in (".md", ".jsonl", ".png")]
    return sorted({path.stem for path in files if kind_of(path) == kind})


# -- Numbers and commands ----------------------------------------------------------------------------------------------
def frames_text(value: float) -> str:
    """1e6 for 1000000, 2.5e5 for 250000: the form the commands write."""
    value = float(value)
    if value < 1000:
        return f"{value:g}"
    exponent = len(str(int(value))) - 1
    mantissa = value / 10**exponent
    return f"{mantissa:g}e{exponent}"


def mean_span(values: list[float], fmt: str = "{:.2f}") -> str:
    """The mean, and min .. max when there are several values."""
    mean = fmt.format(statistics.fmean(values))
    return mean if len(values) == 1 else f"{mean} ({span(values, fmt)})"


def span(values: list[float], fmt: str = "{:.2f}") -> str:
    low, high = min(values), max(values)
    return fmt.format(low) if low == high else f"{fmt.format(low)} .. {fmt.format(high)}"


def int_span(values: list[float]) -> str:
    low, high = int(min(values)), int(max(values))
    return str(low) if low == high else f"{low} .. {high}"


def hyperparam_args(hyperparams: dict) -> list[str]:
    return [f"{key}:{_python(value)}" for key, value in hyperparams.items()]


def _python(value: object) -> str:
    """A value as the Python expression rl_zoo3's ``--hyperparams`` evaluates, in double quotes (shell-friendly)."""
    if isinstance(value, str) and '"' not in value:
        return f'"{value}"'
    if isinstance(value, dict) and all(isinstance(key, str) and key.isidentifier() for key in value):
        return "dict(" + ", ".join(f"{key}={_python(item)}" for key, item in value.items()) + ")"
    return repr(value)


def learning_curve_command(record: dict, out: str) -> str:
    """The ``learning_curve.py`` command line of one run, from one of its records."""
    method = record["method"]
    args = ["python", "benchmarks/learning/learning_curve.py", "--method", method]
    conf = record.get("conf_file")
    if conf and Path(conf).name != f"{method}.yml":
        args += ["--conf-file", f"zoo_configs/{Path(conf).name}"]
    if record.get("algo"):
        args += ["--algo", record["algo"]]
    if record.get("hyperparams"):
        args += ["--hyperparams", *hyperparam_args(record["hyperparams"])]
    args += ["--env", record["env"]]
    checkpoints = record.get("checkpoints") or [record["frames"]]
    args += ["--frames", frames_text(max(checkpoints)), "--checkpoints", *map(frames_text, checkpoints)]
    if record.get("learning_rate") is not None:
        args += ["--learning-rate", f"{record['learning_rate']:g}"]
    args += ["--seed", str(record["seed"])]
    if record.get("n_eval", 100) != 100:
        args += ["--n-eval", str(record["n_eval"])]
    if record.get("eval_seed", 10_000) != 10_000:
        args += ["--eval-seed", str(record["eval_seed"])]
    if record.get("eval_splits"):
        args += ["--eval-splits", *record["eval_splits"]]
    return shlex.join(args + run_options(record, out))


def run_options(record: dict, out: str) -> list[str]:
    """The options both runners share, from a record: VecEnv, torch threads and the result file."""
    args = ["--vec-env", record["vec_env"]] if record.get("vec_env", "dummy") != "dummy" else []
    args += ["--threads", str(record["threads"])] if record.get("threads") else []
    return [*args, "--out", out]


def reference_run_command(record: dict, out: str) -> str:
    """The ``reference_run.py`` command line of one run of the reference implementation, from one of its records."""
    args = ["python", "benchmarks/reference/reference_run.py", "--reference", record["reference"]]
    args += ["--python", record["python"], "--method", record["method"], "--env", record["env"]]
    args += ["--seed", str(record["seed"])]
    checkpoints = record.get("checkpoints") or [record["frames"]]
    args += ["--frames", frames_text(record.get("frames_budget") or max(checkpoints))]
    args += ["--checkpoints", *map(frames_text, checkpoints), "--learning-rate", f"{record['learning_rate']:g}"]
    if record.get("lr_vae") is not None:
        args += ["--lr-vae", f"{record['lr_vae']:g}"]
    if record.get("param"):
        args += ["--param", *record["param"]]
    if record.get("n_eval", 100) != 100:
        args += ["--n-eval", str(record["n_eval"])]
    return shlex.join(args + run_options(record, out))


def offpolicy_command(records: list[dict], out: str) -> str:
    """``offpolicy.py learning`` for SAC/TD3 learning records (env, algo, critic, seed, steps, mean_return)."""
    record = records[0]
    steps = sorted({r["steps"] for r in records if r["seed"] == record["seed"] and r["critic"] == record["critic"]})
    args = ["python", "benchmarks/speed/offpolicy.py", "learning", "--env", record["env"]]
    args += ["--steps", str(max(steps)), "--learning-starts", str(record["learning_starts"])]
    if len(steps) > 1:
        args += ["--eval-every", str(steps[1] - steps[0])]
    args += ["--seeds", *map(str, sorted({r["seed"] for r in records}))]
    args += ["--critics", *sorted({r["critic"] for r in records})]
    if record.get("threads"):
        args += ["--threads", str(record["threads"])]
    args += ["--out", out]
    return shlex.join(args)


# -- Summaries of JSON-lines files -------------------------------------------------------------------------------------
def _label(method: str) -> str:
    from sb3_hypernet.experiments.labels import method_label

    label = method_label(method)
    return label if label == method else f"{label} (``{method}``)"


def _settings(record: dict, keys: tuple[str, ...]) -> str:
    parts = []
    for key in keys:
        value = record.get(key)
        if key == "hyperparams":
            parts += [f"``{arg}``" for arg in hyperparam_args(value or {})]
        elif value not in (None, [], {}):
            parts.append(f"{key.replace('_', ' ')} {value:g}" if isinstance(value, float) else f"{key} {value}")
    return ", ".join(parts) or "as the zoo entry"


def _last_per_seed(records: list[dict], frames_key: str = "frames") -> list[dict]:
    last: dict = {}
    for record in records:
        seed = record.get("seed")
        if seed not in last or record[frames_key] >= last[seed][frames_key]:
            last[seed] = record
    return [last[seed] for seed in sorted(last, key=str)]


def _groups(records: list[dict], keys: tuple[str, ...]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for record in records:
        groups.setdefault(json.dumps([record.get(key) for key in keys], sort_keys=True), []).append(record)
    return groups


def _varying(records: list[dict], keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(key for key in keys if len({json.dumps(r.get(key), sort_keys=True) for r in records}) > 1)


def meta_return_summary(records: list[dict], out: str) -> tuple[list[str], list[list[str]], list[str]]:
    """learning_curve.py, reference_run.py and evaluate_checkpoints.py records: per method, env and setting."""
    extra = _varying(records, ("algo", "learning_rate", "hyperparams", "mode"))
    header = ["method", "env"] + (["settings"] if extra else [])
    header += ["frames (last checkpoint)", "return: mean (min .. max)", "seeds"]
    has_reference = any(isinstance(r.get("reference"), dict) for r in records)
    if has_reference:
        header.append("reference return")
    rows, commands = [], []
    for group in _groups(records, ("method", "env", *extra)).values():
        last = _last_per_seed(group)
        returns = [r["meta_return"]["mean"] for r in last]
        row = [_label(group[0]["method"]), f"``{group[0]['env']}``"]
        if extra:
            row.append(_settings(group[0], extra))
        row += [int_span([r["frames"] for r in last])]
        row += [mean_span(returns), ", ".join(str(r["seed"]) for r in last)]
        if has_reference:
            reference = group[0].get("reference")
            row.append(f"{reference['meta_return']:g} ({reference['label']})" if isinstance(reference, dict) else "")
        rows.append(row)
        if "python" in group[0] and isinstance(group[0].get("reference"), str):
            commands.append(reference_run_command(last[0], out))
        elif "conf_file" in group[0] or "checkpoints" in group[0]:
            commands.append(learning_curve_command(last[0], out))
    return header, rows, commands


def offpolicy_summary(records: list[dict], out: str) -> tuple[list[str], list[list[str]], list[str]]:
    header = ["algorithm", "critic", "env", "steps (last evaluation)", "return: mean (min .. max)", "seeds"]
    rows = []
    for group in _groups(records, ("algo", "critic", "env")).values():
        last = _last_per_seed(group, "steps")
        returns = [r["mean_return"] for r in last]
        rows.append(
            [
                group[0]["algo"].upper(),
                group[0]["critic"],
                f"``{group[0]['env']}``",
                int_span([r["steps"] for r in last]),
                mean_span(returns, "{:.1f}"),
                ", ".join(str(r["seed"]) for r in last),
            ]
        )
    return header, rows, [offpolicy_command(records, out)]


def records_table(records: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Any other records: their scalar fields, one row per record."""
    keys = [key for key in records[0] if all(not isinstance(r.get(key), (dict, list)) for r in records)]

    def cell(value: object) -> str:
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        return rst_literal(text) if text.startswith("-") and not isinstance(value, (int, float)) else text

    return keys, [[cell(record.get(key)) for key in keys] for record in records]


def machine_text(records: list[dict]) -> str:
    """What the records say of the machine they ran on; they name none."""
    told = []
    threads = sorted({r["threads"] for r in records if r.get("threads") is not None})
    if threads:
        told.append(f"torch threads {', '.join(map(str, threads))}")
    defaults = sorted({r["default_threads"] for r in records if r.get("default_threads") is not None})
    if defaults:
        told.append(f"torch's default threads {', '.join(map(str, defaults))}")
    fps = [r["fps"] for r in records if isinstance(r.get("fps"), (int, float))]
    if fps:
        told.append(f"training frames/s {span(fps, '{:.0f}')}")
    seconds = [r["seconds"] for r in records if isinstance(r.get("seconds"), (int, float))]
    if seconds:
        told.append(f"wall time per run up to {max(seconds) / 60:.0f} min")
    recorded = "; the records give " + ", ".join(told) if told else "; the records give neither threads nor speed"
    return f"Machine: not recorded in the file{recorded}."


# -- The directive -----------------------------------------------------------------------------------------------------
def rst_literal(text: str) -> str:
    return "``" + text.replace("`", "\\`") + "``"


def _list_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines += [f"   * - {row[0]}"] + [f"     - {cell}" for cell in row[1:]]
    return [*lines, ""]


def _code(commands: list[str]) -> list[str]:
    return [".. code-block:: bash", "", *(f"   {line}" for command in commands for line in wrapped(command)), ""]


def wrapped(command: str, width: int = 86) -> list[str]:
    """A long command on several lines, broken before its options (with shell line continuations)."""
    words = shlex.split(command)
    if shlex.join(words) != command:  # shell syntax beyond words (a process substitution): as written
        return [command]
    lines = [""]
    for word in map(shlex.quote, words):
        if lines[-1] and word.startswith("--") and len(lines[-1]) + len(word) > width - 4:
            lines[-1] += " \\"
            lines.append("    ")
        lines[-1] += word if not lines[-1].strip() else " " + word
    return lines


class ResultFiles(SphinxDirective):
    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        kind = self.arguments[0]
        if kind not in KINDS:
            raise self.error(f"result-files: kind {kind!r} is not one of {', '.join(KINDS)}")
        # The directive globs benchmarks/results/: read the page again at every build, so new files appear.
        self.env.note_reread()
        if kind == "sweeps":
            return self.sweeps()
        return [self.file_section(stem) for stem in result_stems(kind)]

    # Sections and their content.
    def new_section(self, stem: str, title: str) -> nodes.section:
        section = nodes.section(ids=[nodes.make_id(f"result-{stem}")])
        section += nodes.title(title, "", nodes.literal(title, title))
        return section

    def parse_rst(self, lines: list[str], into: nodes.Element) -> None:
        self.state.nested_parse(StringList(lines, source=self.get_source_info()[0]), self.content_offset, into)

    def parse_md(self, path: Path) -> nodes.section:
        """The Markdown file as a section: MyST's parse of it, in a document of its own."""
        from myst_parser.parsers.sphinx_ import MystParser

        self.env.note_dependency(str(path))
        text = _LINK.sub(lambda m: f"{m.group(1)} (`{m.group(2)}`)", path.read_text())
        if md_title(text) is None:
            text = f"# `{path.name}`\n\n{text}"
        document = utils.new_document(str(path), self.state.document.settings)
        MystParser().parse(text, document)
        sections = [child for child in document.children if isinstance(child, nodes.section)]
        section = sections[0]
        # Ids of this page, not of the file's own document (two files may share a title).
        where = "" if path.parent == RESULTS else f"{path.parent.name}-"
        section["ids"] = [nodes.make_id(f"result-{where}{path.stem}")]
        section["names"] = []
        title = md_title(text)
        if path.parent == RESULTS and title is not None:
            shared = [other for other in RESULTS.glob("*.md") if md_title(other.read_text()) == title]
            if len(shared) > 1:  # two files with one title: the file tells them apart in the contents
                section[0] += [nodes.Text(" ("), nodes.literal(path.name, path.name), nodes.Text(")")]
        for other in sections[1:]:
            section += other
        for block in section.findall(nodes.literal_block):  # printed tables and logs: no Python colours
            if block.get("language") in (None, "", "default"):
                block["language"] = "text"
        return section

    def file_section(self, stem: str) -> nodes.section:
        md, png, jsonl = (RESULTS / f"{stem}{suffix}" for suffix in (".md", ".png", ".jsonl"))
        if md.is_file():
            section = self.parse_md(md)
            text = md.read_text()
            lines = [f"File: ``benchmarks/results/{md.name}``.", ""]
            if not _MACHINE.search(text):
                lines += ["Machine: not stated in the file.", ""]
            # The file's name (and what it does not say) under its title, then the file's own text.
            note = nodes.container()
            self.parse_rst(lines, note)
            for offset, child in enumerate(note.children):
                section.insert(1 + offset, child)
        else:
            section = self.new_section(stem, jsonl.name if jsonl.is_file() else png.name)
        if jsonl.is_file():
            self.parse_rst(self.jsonl_lines(jsonl, summary=not md.is_file()), section)
        if png.is_file():
            self.parse_rst(self.figure_lines(png, md), section)
        return section

    def jsonl_lines(self, path: Path, summary: bool) -> list[str]:
        self.env.note_dependency(str(path))
        records = read_records(path)
        out = f"benchmarks/results/{path.name}"
        commands: list[str] = []
        table: list[str] = []
        first = records[0] if records else {}
        if "meta_return" in first and "method" in first:
            header, rows, commands = meta_return_summary(records, out)
            table = _list_table(header, rows)
        elif "mean_return" in first and "critic" in first:
            header, rows, commands = offpolicy_summary(records, out)
            table = _list_table(header, rows)
        elif records:
            table = _list_table(*records_table(records))
        readme = readme_command_naming(path.name)
        if not commands and readme:
            commands = [readme]
        lines = []
        if summary:
            lines += [
                f"``{out}``: {len(records)} records, one per checkpoint of a run; the last checkpoint each seed "
                "reached:"
                if "meta_return" in first or "mean_return" in first
                else f"``{out}``: {len(records)} records, one per measurement:",
                "",
                *table,
            ]
        else:
            lines += [f"Records: ``{out}`` ({len(records)} records).", ""]
        if commands:
            per_seed = len({r.get("seed") for r in records}) > 1 and "--seed " in commands[0]
            what = "One run (the other seeds: change ``--seed``)" if per_seed else "The runs"
            lines += [f"{what}, with the command rebuilt from the records:" if commands[0] != readme else "Command:"]
            lines += ["", *_code(commands)]
        lines += [machine_text(records), ""]
        return lines

    def figure_lines(self, png: Path, md: Path) -> list[str]:
        self.env.note_dependency(str(png))
        command = readme_command_naming(png.name)
        if command is None and md.is_file():
            found = commands_in(md.read_text())
            command = found[0] if found else None
        caption = f"``benchmarks/results/{png.name}``"
        caption += f", made by {rst_literal(command)}" if command else " (the command that made it is not recorded)"
        relative = Path("..") / png.relative_to(REPO_ROOT)
        return [f".. figure:: {relative.as_posix()}", "   :width: 100%", "", f"   {caption}", ""]

    def sweeps(self) -> list[nodes.Node]:
        sections = []
        folder = RESULTS / "sweeps"
        for journal in sorted(folder.glob("*.log")):
            stem = journal.stem
            self.env.note_dependency(str(journal))
            md = journal.with_suffix(".md")
            section = self.parse_md(md) if md.is_file() else self.new_section(f"sweep-{stem}", journal.name)
            plots = folder / stem
            plot = (
                f"python -m sb3_hypernet.plot --storage benchmarks/results/sweeps/{journal.name} "
                f"--study-name {stem} --out benchmarks/results/sweeps/{stem}"
            )
            files = [journal, *([md] if md.is_file() else [])]
            if plots.is_dir():
                files += sorted(path for path in plots.iterdir() if path.is_file())
            lines = ["Files:", ""]
            lines += [f"- ``{path.relative_to(REPO_ROOT).as_posix()}``" for path in files]
            lines += ["", "The Optuna journal (a snapshot of the study) plots with:", "", *_code([plot])]
            lines += ["Machine: not recorded in the snapshot.", ""]
            self.parse_rst(lines, section)
            if plots.is_dir():
                for table in sorted(plots.glob("*.md")):
                    self.parse_rst([f"Table ``{table.name}``:", ""], section)
                    sub = self.parse_md(table)
                    section.extend(sub.children[1:])
                for figure in sorted(plots.glob("*.png")):
                    self.env.note_dependency(str(figure))
                    relative = (Path("..") / figure.relative_to(REPO_ROOT)).as_posix()
                    caption = f"``{figure.relative_to(REPO_ROOT).as_posix()}``, made by {rst_literal(plot)}"
                    self.parse_rst([f".. figure:: {relative}", "   :width: 100%", "", f"   {caption}", ""], section)
            sections.append(section)
        return sections


def setup(app):
    app.add_directive("result-files", ResultFiles)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
