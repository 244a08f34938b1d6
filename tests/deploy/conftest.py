"""Shared readers for the deploy files: YAML documents, compose interpolation, .env.example."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DEPLOY = BASE_DIR / "deploy"
COMPOSE_FILE = DEPLOY / "compose" / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "compose" / ".env.example"
K8S = DEPLOY / "k8s"

_LISTED = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$")
_VARIABLE = re.compile(r"\$\$|\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}")


def env_example_active() -> dict[str, str]:
    """The uncommented ``NAME=value`` lines: what a copied .env sets."""
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def env_example_listed() -> set[str]:
    """Every variable the file names, set or commented out (``# NAME=default``)."""
    return {
        match.group(1)
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if (match := _LISTED.match(line.strip()))
    }


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}`` and ``$$``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        value = env.get(name)
        if operator in (":-", "-"):
            if value is None or (operator == ":-" and value == ""):
                return argument
        elif operator in (":?", "?") and not value:
            raise KeyError(f"{name}: {argument}")
        return value or ""

    return _VARIABLE.sub(replace, text)


def compose_raw() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def compose_resolved(env: dict[str, str] | None = None) -> dict:
    """The compose file as ``docker compose`` sees it with a .env copied from .env.example."""
    env = env_example_active() if env is None else env
    return yaml.safe_load(interpolate(COMPOSE_FILE.read_text(encoding="utf-8"), env))


def k8s_files() -> list[Path]:
    return sorted(path for path in K8S.rglob("*.yaml") if path.name != "kustomization.yaml")


def k8s_documents() -> list[tuple[Path, dict]]:
    return [
        (path, document)
        for path in k8s_files()
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if document
    ]
