"""The house rules that import-linter cannot express, checked on the source text of ``src/interlude``.

import-linter (``lint-imports``, contracts in ``pyproject.toml``) guards the layers, independence and cycles;
these tests guard what it does not see: names, not modules.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import interlude

SRC = Path(interlude.__file__).parent
PY_FILES = sorted(SRC.rglob("*.py"))


def _modules() -> Iterator[tuple[Path, ast.Module]]:
    for path in PY_FILES:
        yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _rel(path: Path) -> str:
    return str(path.relative_to(SRC.parent))


def test_the_tree_is_read() -> None:
    assert len(PY_FILES) > 100


def test_no_underscore_name_is_imported_from_another_module() -> None:
    """A name used across modules is public: a private import couples to internals nobody promised."""
    found = [
        f"{_rel(path)}:{node.lineno} imports {alias.name} from {node.module}"
        for path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("interlude")
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]
    assert found == []


def _is_dunder(target: ast.expr) -> bool:
    return isinstance(target, ast.Name) and target.id.startswith("__") and target.id.endswith("__")


def test_packages_re_export_nothing() -> None:
    """``__init__.py`` holds a docstring (and ``__version__``) only: names come from their defining modules."""
    found = [
        f"{_rel(path)}:{node.lineno}"
        for path, tree in _modules()
        if path.name == "__init__.py"
        for node in tree.body
        if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
        and not (isinstance(node, ast.Assign) and all(_is_dunder(t) for t in node.targets))
    ]
    assert found == []


def _function_level_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    for func in ast.walk(tree):
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(func):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    yield node


LAZY_COMMAND_LOADERS = "interlude/cli/main.py"
"""The command group imports each subcommand when it runs (``--help`` stays fast); nothing imports it back."""


def test_no_function_level_import_of_our_own_modules() -> None:
    """Function-level imports of ``interlude`` modules hide cycles; optional third-party imports may be lazy."""
    found: list[str] = []
    for path, tree in _modules():
        if path.as_posix().endswith(LAZY_COMMAND_LOADERS):
            continue
        for node in _function_level_imports(tree):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            found += [f"{_rel(path)}:{node.lineno} imports {n}" for n in names if n.startswith("interlude")]
    assert found == []


def test_no_module_is_loaded_by_a_string_name() -> None:
    """Dependencies are imports the tools can see; adapters alone are found through their entry points."""
    found = [
        f"{_rel(path)}:{node.lineno}"
        for path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Attribute) and node.func.attr in {"import_module", "__import__"})
            or (isinstance(node.func, ast.Name) and node.func.id in {"import_module", "__import__"})
        )
    ]
    assert found == []


PROCESS_WORDS = re.compile(r"\b(issues? #?\d+|brief item|other teams?|cross-team|this (ticket|task))", re.I)


@pytest.mark.parametrize("root", ["src", "tests", "benchmarks"])
def test_comments_explain_the_code_not_the_process(root: str) -> None:
    base = SRC.parent.parent / root if root != "src" else SRC
    if not base.exists():
        pytest.skip(f"{base} is not in this checkout")
    found = [
        f"{path.relative_to(base.parent)}:{n}: {line.strip()[:80]}"
        for path in sorted(base.rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if PROCESS_WORDS.search(line) and "PROCESS_WORDS" not in line
    ]
    assert found == []
