"""Operators' commands and settings: `gcx backup` (and restoring it), `gcx check`, TOML."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import attrs
import pytest
import sqlalchemy as sa
from aiosmtpd.smtp import SMTP

from gcx_core.entities import Actor
from gcx_core.exceptions import ConfigurationError
from gcx_core.operations import backup, run_checks
from gcx_core.samples import make_submission
from gcx_core.services import applications
from gcx_core.services import documents as doc_service
from gcx_core.settings import SETTING_NAMES, Settings, SmtpSettings, environment
from gcx_core.storage.tables import applications as applications_table
from gcx_core.system import Gcx
from tests.gcx_core.pdfs import PDF

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(name="gcx_database_url")
def _sqlite(gcx_sqlite_database_url: str) -> str:
    return gcx_sqlite_database_url


async def test_a_backup_restores_to_the_same_data(gcx: Gcx, tmp_path: Path) -> None:
    app = await applications.submit(gcx, make_submission(), Actor.applicant())
    doc = await doc_service.upload_document(
        gcx, app.id, "tax_clearance", PDF, "t.pdf", Actor.applicant()
    )
    db_copy, files_copy = await asyncio.to_thread(backup, gcx.settings, tmp_path / "backups")
    # Restore: the copy as the database of a fresh data directory, the files beside it.
    restored_dir = tmp_path / "restored"
    restored_dir.mkdir()
    db_copy.rename(restored_dir / "gcx.db")
    files_copy.rename(restored_dir / "files")
    settings = Settings(data_dir=restored_dir, secret_key="restore")
    async with await Gcx.open(settings) as restored:
        async with restored.database.read() as conn:
            codes = list(
                (await conn.execute(sa.select(applications_table.c.tracking_code))).scalars()
            )
        assert codes == [app.tracking_code]
        assert await restored.files.get(doc.sha256) == PDF


def test_backup_is_for_the_embedded_database(tmp_path: Path) -> None:
    settings = Settings(database_url="postgresql+asyncpg://db.example/gcx", secret_key="x")
    with pytest.raises(ConfigurationError, match="pg_dump"):
        backup(settings, tmp_path)
    with pytest.raises(ConfigurationError, match="no database"):
        backup(Settings(data_dir=tmp_path / "empty", secret_key="x"), tmp_path / "out")


async def test_check_names_what_works_and_what_does_not(gcx: Gcx, tmp_path: Path) -> None:
    class Sink:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    server = await asyncio.get_running_loop().create_server(lambda: SMTP(Sink()), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        good = attrs.evolve(gcx.settings, smtp=SmtpSettings("127.0.0.1", port, starttls=False))
        checks = {c.name: c for c in await run_checks(good)}
        assert all(c.ok for c in checks.values()), checks
        assert checks["migrations"].detail == "up to date"
        bad = attrs.evolve(good, smtp=SmtpSettings("127.0.0.1", 1, starttls=False))
        smtp = {c.name: c for c in await run_checks(bad)}["smtp"]
        assert not smtp.ok and "Connect" in smtp.detail
    finally:
        server.close()
        await server.wait_closed()
    fresh = Settings(data_dir=tmp_path / "new", secret_key="x")
    migrations = {c.name: c for c in await run_checks(fresh)}["migrations"]
    assert not migrations.ok and "gcx migrate" in migrations.detail


def test_a_toml_file_under_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "gcx.toml"
    config.write_text(
        'base_url = "https://apply.example.org"\nsmtp_host = "mail.example.org"\n'
        'smtp_port = 2525\nsmtp_starttls = false\ndisable_plugins = ["a", "b"]\n'
        'time_zone = "Africa/Accra"\n'
    )
    env = environment({"GCX_CONFIG": str(config), "GCX_SMTP_PORT": "587"})
    settings = Settings.from_env(env)
    assert settings.base_url == "https://apply.example.org"
    assert settings.smtp is not None and settings.smtp.host == "mail.example.org"
    assert settings.smtp.port == 587  # the environment wins
    assert settings.smtp.starttls is False
    assert settings.disabled_plugins == ("a", "b") and settings.time_zone == "Africa/Accra"
    config.write_text('databse_url = "x"\n')
    with pytest.raises(ConfigurationError, match="unknown settings: databse_url"):
        environment({"GCX_CONFIG": str(config)})
    config.write_text("base_url = \n")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        environment({"GCX_CONFIG": str(config)})
    with pytest.raises(ConfigurationError, match="cannot be read"):
        environment({"GCX_CONFIG": str(tmp_path / "missing.toml")})


def test_every_setting_is_read_known_and_documented() -> None:
    read = set()
    for path in (ROOT / "src").rglob("*.py"):
        if "testing" in path.parts:
            continue
        read |= set(re.findall(r'"(GCX_[A-Z_]+)"', path.read_text()))
    read -= {"GCX_CONFIG"}
    assert read == set(SETTING_NAMES), read ^ set(SETTING_NAMES)
    documented = set(re.findall(r"`(GCX_[A-Z_]+)`", (ROOT / "docs/configuration.md").read_text()))
    assert set(SETTING_NAMES) | {"GCX_CONFIG"} <= documented, set(SETTING_NAMES) - documented
