"""Settings: every variable documented, keys required in production and generated once in development."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

_READERS = {"env_str", "env_secret", "env_bool", "env_int", "env_list", "env_choice", "_secret"}
_KEYS = ("SECRET_KEY", "PORTAL_STAGING_KEY", "PORTAL_SECRETS_KEY")
_PRINT = f"from django.conf import settings; print(' '.join(getattr(settings, n) for n in {_KEYS!r}))"


def _variables_read_by_settings() -> list[str]:
    tree = ast.parse((Path(settings.BASE_DIR) / "portal" / "settings.py").read_text())
    names = [
        str(node.args[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _READERS
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ]
    return list(dict.fromkeys(names))


def _documented_variables() -> set[str]:
    readme = (Path(settings.BASE_DIR) / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    documented: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            documented |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    return documented


def test_every_variable_the_settings_read_has_a_row_in_the_readme_table() -> None:
    read = _variables_read_by_settings()
    assert len(read) > 40
    assert [name for name in read if name not in _documented_variables()] == []


def _settings_process(data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "SECRET_KEY", "DEBUG"))}
    clean.update(
        {"DJANGO_SETTINGS_MODULE": "portal.settings", "PORTAL_DATA_DIR": str(data_dir), "PYTHONPATH": "."},
        **env,
    )
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {_PRINT}"],
        cwd=settings.BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_development_generates_each_key_once_into_the_data_folder(tmp_path: Path) -> None:
    first = _settings_process(tmp_path)
    assert first.returncode == 0, first.stderr
    again = _settings_process(tmp_path)
    assert again.stdout == first.stdout
    secret_key, staging_key, secrets_key = first.stdout.split()
    assert len(secret_key) >= 50 and staging_key != secrets_key
    files = {path.name: path for path in tmp_path.iterdir() if path.is_file()}
    assert {"secret_key", "staging_key", "secrets.key"} <= set(files)
    assert files["staging_key"].read_text() == staging_key
    assert files["secrets.key"].read_text() == secrets_key
    assert all(
        files[name].stat().st_mode & 0o777 == 0o600 for name in ("secret_key", "staging_key", "secrets.key")
    )


@pytest.mark.parametrize("missing", ["PORTAL_STAGING_KEY", "PORTAL_SECRETS_KEY"])
def test_production_refuses_to_start_without_a_sealing_key(tmp_path: Path, missing: str) -> None:
    env = {
        "PORTAL_ENV": "production",
        "SECRET_KEY": "x" * 60,
        "ALLOWED_HOSTS": "portal.example.com",
        "PORTAL_STAGING_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        "PORTAL_SECRETS_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    }
    del env[missing]
    result = _settings_process(tmp_path, **env)
    assert result.returncode != 0
    assert f"{missing} (or {missing}_FILE) is required when PORTAL_ENV=production" in result.stderr
    assert not [path for path in tmp_path.iterdir() if path.is_file()]


@pytest.mark.parametrize("variable", ["PORTAL_STAGING_KEY", "PORTAL_SECRETS_KEY"])
def test_an_unusable_key_stops_start_up_naming_its_variable(tmp_path: Path, variable: str) -> None:
    result = _settings_process(tmp_path, **{variable: "not-a-key"})
    assert result.returncode != 0
    assert f"{variable} must be Base64 of 32 random bytes" in result.stderr
