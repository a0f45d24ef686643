"""The package's import rules, read from the source (every import statement, those inside functions included):

- ``common/`` imports nothing else of the package;
- a method folder (``meta_ppo``, ``rnn``, ``task_inference``, ``varibad``, ``offpolicy``, ``pearl``, ``maml``)
  imports only ``common/``, itself and the folders it is built from (:data:`BUILT_FROM`: Hyper-PEARL and
  Hyper-MAML recompose the ICML 2021 hypernetworks of ``offpolicy``);
- the library (``common/``, the method folders, ``experiments/``) never imports ``envs`` or the command lines;
- ``envs`` takes only the task interface and the array VecEnv base from the library;
- nothing in the repository imports a module path of before the move (kept only for saved models and users).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sb3_hypernet._moved import MOVED_MODULES

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sb3_hypernet"
METHOD_FOLDERS = ("meta_ppo", "rnn", "task_inference", "varibad", "offpolicy", "pearl", "maml")
#: Method folders built on another's components.
BUILT_FROM = {"pearl": ("offpolicy",), "maml": ("offpolicy",)}
COMMAND_LINES = ("train", "enjoy", "evaluate", "optimize", "sweep", "plot", "cli")
ENVS_MAY_IMPORT = ("sb3_hypernet.common.task", "sb3_hypernet.common.array_vec_env")


def imported_modules(path: Path) -> list[str]:
    """Every module an import statement of ``path`` names (for ``from x import y``: ``x`` and ``x.y``)."""
    modules = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.ImportFrom):
            raise AssertionError(f"{path}: relative import; the package uses absolute imports")
    return modules


def package_imports(path: Path) -> set[str]:
    """The package's modules that ``path`` imports, as ``sb3_hypernet.<first level>[.<second level>]``."""
    return {m for m in imported_modules(path) if m == "sb3_hypernet" or m.startswith("sb3_hypernet.")}


def part_of(module: str) -> str:
    """``common``, a method folder, ``experiments``, a command line, or the package root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "sb3_hypernet"


def files_of(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def library_files() -> list[Path]:
    return [f for folder in ("common", *METHOD_FOLDERS, "experiments") for f in files_of(folder)]


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", files_of("common"), ids=relative)
def test_common_imports_only_common(path):
    outside = sorted(m for m in package_imports(path) if part_of(m) != "common")
    assert not outside, f"{relative(path)} imports {outside}: common/ may import only common/"


@pytest.mark.parametrize("path", [f for folder in METHOD_FOLDERS for f in files_of(folder)], ids=relative)
def test_method_folders_import_only_common_and_themselves(path):
    own = path.relative_to(PACKAGE).parts[0]
    allowed = ("common", own, *BUILT_FROM.get(own, ()))
    outside = sorted(m for m in package_imports(path) if part_of(m) not in allowed)
    assert not outside, f"{relative(path)} imports {outside}: a method folder may import only {', '.join(allowed)}"


@pytest.mark.parametrize("path", library_files(), ids=relative)
def test_the_library_never_imports_envs_or_the_command_lines(path):
    modules = imported_modules(path)
    envs = sorted(m for m in modules if m == "envs" or m.startswith("envs."))
    commands = sorted(m for m in package_imports(path) if part_of(m) in COMMAND_LINES)
    assert not envs, f"{relative(path)} imports {envs}: the library never imports envs (use the registries)"
    assert not commands, f"{relative(path)} imports the command line(s) {commands}"


@pytest.mark.parametrize("path", sorted((ROOT / "envs").rglob("*.py")), ids=relative)
def test_envs_take_only_the_task_interface_and_the_array_vec_env_base(path):
    taken = {m.rsplit(".", 1)[0] if m.rsplit(".", 1)[0] in ENVS_MAY_IMPORT else m for m in package_imports(path)}
    outside = sorted(m for m in taken if m not in ENVS_MAY_IMPORT)
    assert not outside, f"{relative(path)} imports {outside}: envs may import only {', '.join(ENVS_MAY_IMPORT)}"


def repository_files() -> list[Path]:
    folders = ("sb3_hypernet", "envs", "tests", "benchmarks")
    return sorted(f for folder in folders for f in (ROOT / folder).rglob("*.py") if f.name != "_moved.py")


def test_no_code_imports_a_moved_module_path():
    found = {
        relative(path): sorted({m for m in imported_modules(path) if m in MOVED_MODULES}) for path in repository_files()
    }
    found = {path: modules for path, modules in found.items() if modules}
    assert not found, f"old module paths imported (import from their new places): {found}"


def test_the_rules_see_a_violation(tmp_path):
    # The checks read what they are meant to read: a common module reaching into a method folder and into envs.
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from sb3_hypernet.rnn.policies import RNNPolicy\n    import envs.vector\n")
    assert {part_of(m) for m in package_imports(bad)} == {"rnn"}
    assert "envs.vector" in imported_modules(bad)
    bad.write_text("from sb3_hypernet.wrappers import TASK_KEY\n")
    assert set(imported_modules(bad)) & set(MOVED_MODULES) == {"sb3_hypernet.wrappers"}
