"""Sphinx configuration of the sb3-hypernet documentation, laid out as Stable-Baselines3's.

Build (offline, warnings as errors, as ``tests/test_docs.py`` does):
``python -m sphinx -W --keep-going -b html docs docs/_build/html``.
"""

from __future__ import annotations

import os
import re
import sys

# The package and the benchmark environments are imported from the repository, so the docs describe this checkout.
DOCS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(DOCS))
sys.path.insert(0, os.path.join(DOCS, "_ext"))

import sb3_hypernet  # noqa: E402

project = "sb3-hypernet"
author = "sb3-hypernet contributors"
copyright = "sb3-hypernet contributors"
release = sb3_hypernet.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    # Parses CHANGELOG.md for misc/changelog.rst; nothing else is Markdown.
    "myst_parser",
    # Tables of the registered benchmark ids and of the zoo configs' entries, generated at build time (docs/_ext).
    "benchmark_tables",
    # The results page: the files of benchmarks/results/, with their commands, generated at build time (docs/_ext).
    "result_files",
]
# No intersphinx: it downloads inventories at build time, and the build must work offline (references to
# Stable-Baselines3, gymnasium and torch stay plain text). No viewcode: its source listings would show the code's
# comments, which are written for the package's developers.

source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
language = "en"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []
pygments_style = "sphinx"

# autodoc: the docstrings use reST fields (``:param name:``), which Sphinx renders as they are.
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
# The policies' signatures list every keyword they take, the head's included (``inspect.signature``).
autodoc_default_options = {"show-inheritance": True, "exclude-members": "head_class"}
myst_enable_extensions: list[str] = []
myst_heading_anchors = 3

html_theme = "sphinx_rtd_theme"
html_title = f"sb3-hypernet {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {"navigation_depth": 3, "collapse_navigation": False}
html_show_sourcelink = False


# -- Docstrings as published ----------------------------------------------------------------------------------------
# gymnasium's docstring layout (``## Description`` headings, Markdown tables) in the benchmark environments.
_MD_HEADING = re.compile(r"^(\s*)## (.+?)\s*$")
_MD_RULE = re.compile(r"^\s*\|[\s:|-]+\|\s*$")


def _markdown_table(rows: list[str], indent: str) -> list[str]:
    cells = [[cell.strip() for cell in row.strip().strip("|").split("|")] for row in rows if not _MD_RULE.match(row)]
    out = [f"{indent}.. list-table::", f"{indent}   :header-rows: 1", ""]
    for row in cells:
        out += [f"{indent}   * - {row[0]}"] + [f"{indent}     - {cell}" for cell in row[1:]]
    return [*out, ""]


def gymnasium_layout_to_rest(lines: list[str]) -> list[str]:
    """``## Heading`` lines become rubrics and Markdown pipe tables become list-tables."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        heading = _MD_HEADING.match(lines[i])
        if heading:
            out += ["", f"{heading.group(1)}.. rubric:: {heading.group(2)}", ""]
            i += 1
        elif lines[i].lstrip().startswith("|") and i + 1 < len(lines) and _MD_RULE.match(lines[i + 1]):
            j = i
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                j += 1
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            out += ["", *_markdown_table(lines[i:j], indent)]
            i = j
        else:
            out.append(lines[i])
            i += 1
    return out


def process_docstring(app, what, name, obj, options, lines: list[str]) -> None:
    lines[:] = gymnasium_layout_to_rest(lines)


def setup(app):
    app.connect("autodoc-process-docstring", process_docstring)
