"""Every use of the CEL library goes through the bounded evaluator: the code is walked (AST) and
any module other than the evaluator's worker that imports a CEL package fails the test."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
ALLOWED = {"smarteros/infra/evaluator/worker.py"}
CEL_PACKAGES = ("cel", "celpy", "cel_python", "celpy_ext", "pycel")
SKIPPED = {".venv", "node_modules", ".git", "static", "staticfiles", "__pycache__"}


def _is_cel(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in CEL_PACKAGES)


def cel_imports(tree: ast.AST) -> list[int]:
    """Lines that import a CEL package: import statements, and import_module/__import__ calls
    with a literal name."""
    lines = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Import) and any(_is_cel(a.name) for a in node.names)) or (
            isinstance(node, ast.ImportFrom) and node.level == 0 and _is_cel(node.module or "")
        ):
            lines.append(node.lineno)
        elif isinstance(node, ast.Call) and node.args:
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            first = node.args[0]
            if (
                name in ("import_module", "__import__")
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and _is_cel(first.value)
            ):
                lines.append(node.lineno)
    return lines


def project_files() -> list[Path]:
    return [
        path
        for path in ROOT.rglob("*.py")
        if not SKIPPED.intersection(path.relative_to(ROOT).parts)
    ]


def test_only_the_evaluator_imports_the_cel_library() -> None:
    users = {}
    for path in project_files():
        relative = path.relative_to(ROOT).as_posix()
        lines = cel_imports(ast.parse(path.read_text(encoding="utf-8"), relative))
        if lines:
            users[relative] = lines
    assert set(users) == ALLOWED, f"CEL used outside the evaluator: {users}"


def test_the_walk_finds_each_spelling() -> None:
    source = (
        "import cel\nfrom cel import compile\nimport celpy.evaluation as e\n"
        "import importlib\nimportlib.import_module('cel')\n__import__('celpy')\n"
        "import celery\nfrom . import cel\n"
    )
    assert cel_imports(ast.parse(source)) == [1, 2, 3, 5, 6]
