"""Which environment variables the code reads: literal names passed to config/env.py's helpers and to
``os.environ`` / ``os.getenv``, found by walking the syntax trees of config/, apps/, stack/ and inference/,
plus the keys of the model worker profiles' ``[env]`` tables (``engine_env`` lets the environment override
each of them). Names built at run time (``os.environ.get(variable)``) are not seen; the demo passwords
are read that way, and .env.example lists them by hand."""

from __future__ import annotations

import ast
from pathlib import Path

from inference import profiles

BASE_DIR = Path(__file__).resolve().parent.parent.parent
SCANNED = ("config", "apps", "stack", "inference")
ENV_HELPERS = {"env_str", "env_secret", "env_bool", "env_int", "env_float", "env_list"}
ENVIRON_METHODS = {"get", "setdefault", "pop"}


def _is_os_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and _name(node.value) == "os"


def _name(node: ast.AST) -> str | None:
    return node.id if isinstance(node, ast.Name) else None


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def names_in_source(source: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            first = _literal(node.args[0])
            if first is None:
                continue
            if _name(func) in ENV_HELPERS:
                found.add(first)
            elif isinstance(func, ast.Attribute):
                if func.attr in ENVIRON_METHODS and _is_os_environ(func.value):
                    found.add(first)
                elif func.attr == "getenv" and _name(func.value) == "os":
                    found.add(first)
        elif (
            isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_os_environ(node.value)
        ):
            name = _literal(node.slice)
            if name:
                found.add(name)
        elif isinstance(node, ast.Compare) and any(_is_os_environ(c) for c in node.comparators):
            name = _literal(node.left)
            if name:
                found.add(name)
    return found


def code_files() -> list[Path]:
    return [
        path
        for folder in SCANNED
        for path in sorted((BASE_DIR / folder).rglob("*.py"))
        if "tests" not in path.relative_to(BASE_DIR).parts and "migrations" not in path.parts
    ]


def variables_read() -> dict[str, list[str]]:
    """Each variable name and the files that read it."""
    where: dict[str, list[str]] = {}
    for path in code_files():
        for name in names_in_source(path.read_text(encoding="utf-8")):
            where.setdefault(name, []).append(str(path.relative_to(BASE_DIR)))
    for name in profiles.available():
        for key in profiles.load(name).env:
            where.setdefault(key, []).append(f"inference/profiles/{name}.toml [env]")
    return where
