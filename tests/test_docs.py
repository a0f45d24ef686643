"""The documentation site (docs/) builds with warnings as errors, offline, and documents the whole public API.

One Sphinx build (about 15 s on 2 cores) serves every test here.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sb3_hypernet

REPO_ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("sphinx") is None,
    reason='Sphinx is not installed: pip install -e ".[docs]" (the test extra installs it too)',
)


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs_html")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "docs", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"sphinx-build failed:\n{result.stdout[-5000:]}\n{result.stderr[-5000:]}"
    return out


def test_docs_build_without_warnings(built_site: Path) -> None:
    for page in ("index", "guide/install", "guide/quickstart", "modules/rnn", "envs/gridworld", "misc/changelog"):
        assert (built_site / f"{page}.html").is_file(), page


def test_docs_document_the_public_api(built_site: Path) -> None:
    from sphinx.util.inventory import InventoryFile

    with open(built_site / "objects.inv", "rb") as file:
        inventory = InventoryFile.load(file, "", lambda base, uri: uri)
    documented = {name for entries in inventory.values() for name in entries}
    expected = {f"sb3_hypernet.{name}" for name in sb3_hypernet.__all__} | {
        "sb3_hypernet.common.policy_hooks.MetaPolicyHooks",
        "sb3_hypernet.experiments.zoo.build_model",
        "sb3_hypernet.common.array_vec_env.register_array_family",
    }
    assert not expected - documented, f"not documented: {sorted(expected - documented)}"


def test_docs_cite_papers_not_design_notes(built_site: Path) -> None:
    # Some docstrings cite sections of a design document that users do not have; conf.py drops those citations.
    cited = [str(page.relative_to(built_site)) for page in built_site.rglob("*.html") if "SPEC" in page.read_text()]
    assert not cited, f"pages citing SPEC sections: {cited}"


def test_nothing_users_read_cites_the_design_notes() -> None:
    # Docstrings, comments, configs and docs cite the papers' sections or a docs page, never a document users lack.
    root = Path(__file__).resolve().parents[1]
    sources = [
        *(root / "sb3_hypernet").rglob("*.py"),
        *(root / "envs").rglob("*.py"),
        *(root / "zoo_configs").rglob("*.yml"),
    ]
    sources += [
        *(root / "docs").rglob("*.rst"),
        *(root / "benchmarks").glob("*/*.py"),
        root / "README.md",
        root / "CHANGELOG.md",
    ]
    cited = [str(path.relative_to(root)) for path in sources if re.search(r"\bSPEC\b", path.read_text())]
    assert not cited, f"files citing SPEC: {cited}"


def test_results_page_shows_every_result_file(built_site: Path) -> None:
    # docs/results.rst is generated from benchmarks/results/: a new result file shows up there by itself.
    page = (built_site / "results.html").read_text()
    files = sorted((REPO_ROOT / "benchmarks" / "results").glob("*.md"))
    files += sorted((REPO_ROOT / "benchmarks" / "results").glob("*.jsonl"))
    assert files
    missing = [path.name for path in files if path.name not in page]
    assert not missing, f"result files the results page does not show: {missing}"
