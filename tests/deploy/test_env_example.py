"""deploy/compose/.env.example lists every environment variable the code reads (tests/deploy/env_scan.py
says how they are found), and the variables compose.yaml interpolates."""

from __future__ import annotations

import re

from tests.deploy.conftest import COMPOSE_FILE, env_example_listed
from tests.deploy.env_scan import names_in_source, variables_read


def test_every_variable_the_code_reads_is_in_env_example() -> None:
    listed = env_example_listed()
    missing = {name: files for name, files in variables_read().items() if name not in listed}
    assert not missing, f"add these to deploy/compose/.env.example: {missing}"


def test_every_variable_compose_interpolates_is_in_env_example() -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE_FILE.read_text(encoding="utf-8")))
    assert used - env_example_listed() == set()


def test_demo_passwords_read_by_computed_name_are_listed() -> None:
    """bootstrap_demo reads them through a variable the scan cannot follow."""
    assert {"DEMO_ADMIN_PASSWORD", "DEMO_AGENT_PASSWORD"} <= env_example_listed()


def test_the_scan_finds_each_way_of_reading_a_variable() -> None:
    source = """
import os
from config.env import env_int, env_str
A = env_str("HELPER")
B = env_int("HELPER_INT", 3)
C = os.environ.get("ENVIRON_GET")
D = os.environ["ENVIRON_ITEM"]
E = os.getenv("GETENV")
F = "IN_TEST" in os.environ
os.environ.setdefault("SETDEFAULT", "1")
os.environ["WRITTEN"] = "1"
name = "COMPUTED"
G = os.environ.get(name)
"""
    assert names_in_source(source) == {
        "HELPER",
        "HELPER_INT",
        "ENVIRON_GET",
        "ENVIRON_ITEM",
        "GETENV",
        "IN_TEST",
        "SETDEFAULT",
    }
