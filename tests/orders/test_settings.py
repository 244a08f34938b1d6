"""Carrier settings in production: no defaults, fail fast without them; keys may come from files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.test_settings import PRODUCTION_ENV, _manage


@pytest.mark.parametrize("missing", ["CARRIER_API_KEY", "CARRIER_API_BASE_URL"])
def test_production_without_the_carrier_setting_fails_fast(missing: str) -> None:
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != missing}
    result = _manage(["check"], env)
    assert result.returncode != 0
    assert missing in result.stderr


def test_the_carrier_key_may_come_from_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "carrier_api_key"
    key_file.write_text("from-a-file\n")
    env = {key: value for key, value in PRODUCTION_ENV.items() if key != "CARRIER_API_KEY"}
    result = _manage(
        ["shell", "-c", "from django.conf import settings; print(settings.CARRIER_API_KEY)"],
        {**env, "CARRIER_API_KEY_FILE": str(key_file)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "from-a-file"
