"""Settings from the environment, tracking codes, and the import boundary of gcx_core."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from gcx_core.exceptions import ConfigurationError
from gcx_core.settings import Settings
from gcx_core.tracking import ALPHABET, new_tracking_code, normalise_tracking_code


def test_defaults_need_nothing(tmp_path):
    s = Settings.from_env({"GCX_DATA_DIR": str(tmp_path)})
    assert s.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path / 'gcx.db'}"
    assert not s.scale_out and s.smtp is None and s.phone_country == "GH"


def test_seed_names_are_accepted():
    s = Settings.from_env(
        {
            "REDIS_URL": "redis://r:6379/0",
            "CELERY_BROKER_URL": "redis://b:6379/1",
            "EMAIL_HOST": "smtp.example.com",
            "EMAIL_PORT": "2525",
            "EMAIL_USE_TLS": "True",
            "EMAIL_HOST_USER": "mailer",
            "EMAIL_HOST_PASSWORD": "s3cret",
        }
    )
    assert s.redis_url == "redis://r:6379/0" and s.broker_url == "redis://b:6379/1"
    assert s.scale_out
    assert s.smtp is not None
    assert (s.smtp.host, s.smtp.port, s.smtp.starttls, s.smtp.username) == (
        "smtp.example.com",
        2525,
        True,
        "mailer",
    )
    assert "s3cret" not in repr(s)


def test_gcx_names_win():
    s = Settings.from_env(
        {
            "REDIS_URL": "redis://old",
            "GCX_REDIS_URL": "redis://new",
            "GCX_SMTP_HOST": "a",
            "EMAIL_HOST": "b",
        }
    )
    assert s.redis_url == "redis://new" and s.broker_url == "redis://new"
    assert s.smtp is not None and s.smtp.host == "a"


@pytest.mark.parametrize(
    "env",
    [
        {"EMAIL_HOST": "h", "EMAIL_PORT": "abc"},
        {"EMAIL_HOST": "h", "EMAIL_PORT": "0"},
        {"EMAIL_HOST": "h", "EMAIL_USE_TLS": "perhaps"},
        {"EMAIL_HOST": "h", "GCX_SMTP_TLS": "true", "GCX_SMTP_STARTTLS": "true"},
        {"GCX_NOTIFICATION_MAX_ATTEMPTS": "0"},
    ],
)
def test_bad_settings_are_named(env):
    with pytest.raises(ConfigurationError):
        Settings.from_env(env)


def test_secret_key_is_generated_once_for_embedded(tmp_path):
    s = Settings(data_dir=tmp_path)
    first = s.with_secret_key().secret_key
    assert first and s.with_secret_key().secret_key == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    with pytest.raises(ConfigurationError):
        Settings(data_dir=tmp_path, redis_url="redis://x").with_secret_key()


def test_tracking_codes():
    codes = [new_tracking_code() for _ in range(2000)]
    assert len(set(codes)) == len(codes)
    for code in codes[:50]:
        assert code.startswith("GCX-") and len(code) == 18
        assert all(ch in ALPHABET for ch in code[4:].replace("-", ""))
        assert normalise_tracking_code(code.lower().replace("-", " ")) == code
    # All 32 symbols appear in every position: the bits are not biased.
    positions = Counter((i, ch) for code in codes for i, ch in enumerate(code[4:]))
    assert len(positions) == 12 * 32 + 2  # plus the two hyphens, which never vary
    assert normalise_tracking_code("gcx-7k3q-m9td-x2hb") == "GCX-7K3Q-M9TD-X2HB"
    assert normalise_tracking_code("GCX-7K3Q-M9TD-X2HI") == "GCX-7K3Q-M9TD-X2H1"
    for bad in ("", "GCX", "GCX-7K3Q-M9TD-X2H", "GCX-7K3Q-M9TD-X2HBB", "GCX-7K3Q-M9TD-X2HU"):
        assert normalise_tracking_code(bad) is None


def test_importing_gcx_core_loads_neither_litestar_nor_taskiq():
    code = (
        "import sys, gcx_core, gcx_core.cli, gcx_core.services.applications, "
        "gcx_core.services.dashboard, gcx_core.services.accounts, gcx_core.seed\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('litestar', 'taskiq', "
        "'taskiq_redis', 'redis'))\n"
        "print(bad)\nsys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_gcx_core_source_never_imports_web_or_queue_frameworks():
    root = Path(__import__("gcx_core").__file__).parent
    offenders = [
        str(p)
        for p in root.rglob("*.py")
        if any(
            line.strip().startswith(
                ("import litestar", "from litestar", "import taskiq", "from taskiq")
            )
            for line in p.read_text().splitlines()
        )
    ]
    assert offenders == []
