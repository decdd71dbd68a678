"""Subscribers named by the deployment: a TOML file and the GCX_WEBHOOK_* variables, synced
into the database as each process starts; every mistake named."""

from __future__ import annotations

import json

import pytest
from gcx_webhook import config, gcx_process_services, store

from gcx_core.entities import Actor, Role
from gcx_core.exceptions import ConfigurationError, ValidationError
from gcx_core.services import applications
from gcx_core.testing import make_submission

SECRET = "from-the-environment-0123"


async def start(gcx, role="web"):
    async with gcx_process_services(gcx=gcx, role=role):
        pass


@pytest.fixture(name="webhook_file")
def _webhook_file(tmp_path, monkeypatch, receiver):
    path = tmp_path / "webhooks.toml"
    monkeypatch.setenv("GCX_WEBHOOK_FILE", str(path))
    monkeypatch.setenv("GCX_ERP_SECRET", SECRET)
    path.write_text(
        f"""
[[subscriber]]
name = "erp"
url = "{receiver.url}"
secret_env = "GCX_ERP_SECRET"
events = ["application.submitted"]

[[subscriber]]
name = "archive"
url = "{receiver.url}?archive"
secret = "a-secret-written-in-the-file"
active = false
"""
    )
    return path


async def test_the_file_is_synced_and_delivered_to(
    gcx, gcx_staff, gcx_deliver, receiver, webhook_file
):
    await start(gcx)
    erp, archive = sorted(await store.all_subscribers(gcx), key=lambda s: s.name != "erp")
    assert (erp.name, erp.source, erp.active, erp.events) == (
        "erp",
        "config",
        True,
        ("application.submitted",),
    )
    assert erp.secret == SECRET and not archive.active
    await applications.submit(gcx, make_submission(), Actor.applicant())
    await gcx_deliver()
    (request,) = receiver.requests
    assert json.loads(request["body"])["type"] == "application.submitted"
    # The back office shows them but does not change them.
    _, admin = await gcx_staff(Role.ADMIN)
    with pytest.raises(ValidationError, match="configuration"):
        await store.update(gcx, admin, erp.id, {"url": receiver.url, "active": "on"})
    with pytest.raises(ValidationError, match="configuration"):
        await store.delete(gcx, admin, erp.id)
    # Restarted with the file changed: updated in place; one dropped is turned off.
    webhook_file.write_text(
        f'[[subscriber]]\nname = "erp"\nurl = "{receiver.url}?v2"\nsecret_env = "GCX_ERP_SECRET"\n'
    )
    await start(gcx)
    now = {s.name: s for s in await store.all_subscribers(gcx)}
    assert now["erp"].id == erp.id and now["erp"].url.endswith("?v2") and now["erp"].events == ()
    assert not now["archive"].active
    assert now["archive"].disabled_reason == "no longer in the configuration"


async def test_a_410_survives_a_restart_until_the_url_changes(
    gcx, gcx_deliver, receiver, webhook_file
):
    await start(gcx)
    receiver.answer(410)
    await applications.submit(gcx, make_submission(), Actor.applicant())
    await gcx_deliver()
    await start(gcx)
    assert not {s.name: s for s in await store.all_subscribers(gcx)}["erp"].active
    webhook_file.write_text(
        webhook_file.read_text().replace(f'url = "{receiver.url}"', f'url = "{receiver.url}?new"')
    )
    await start(gcx)
    assert {s.name: s for s in await store.all_subscribers(gcx)}["erp"].active


async def test_the_environment_names_one_subscriber(gcx, monkeypatch, receiver):
    monkeypatch.setenv("GCX_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("GCX_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("GCX_WEBHOOK_EVENTS", "document.*, application.approved")
    await start(gcx)
    (sub,) = await store.all_subscribers(gcx)
    assert sub.name == "environment" and sub.events == ("document.*", "application.approved")


async def test_a_name_taken_in_the_back_office_is_a_configuration_error(
    gcx, gcx_staff, monkeypatch, receiver
):
    _, admin = await gcx_staff(Role.ADMIN)
    await store.create(
        gcx, admin, {"name": "environment", "url": receiver.url, "secret": SECRET, "active": "on"}
    )
    monkeypatch.setenv("GCX_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("GCX_WEBHOOK_SECRET", SECRET)
    with pytest.raises(ConfigurationError, match="added in the back office"):
        await start(gcx)


async def test_a_filter_matching_no_event_stops_the_start(gcx, monkeypatch, receiver):
    monkeypatch.setenv("GCX_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("GCX_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("GCX_WEBHOOK_EVENTS", "application.aproved")
    with pytest.raises(ConfigurationError, match=r"'application\.aproved' matches no event"):
        await start(gcx)
    assert await store.all_subscribers(gcx) == []


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[[subscriber]]\nname = 'a'\nurl = 'http://example.com'\nsecret = '0123456789abcdef'",
         "https"),
        ("[[subscriber]]\nname = 'a'\nurl = 'https://example.com'\nsecret = 'short'", "16"),
        ("[[subscriber]]\nname = 'a'\nurl = 'https://example.com'\nsecret_env = 'NOPE_UNSET'",
         "NOPE_UNSET"),
        ("[[subscriber]]\nurl = 'https://example.com'\nsecret = '0123456789abcdef'", "'name'"),
        ("[[subscriber]]\nname = 'a'\nurl = 'https://e.example'\nsecret = '0123456789abcdef'\n"
         "events = 'all'", "'events'"),
        ("[[subscriber]]\nname = 'a'\nurl = 'https://e.example'\nsecret = '0123456789abcdef'\n"
         "colour = 'red'", "colour"),
        ("[[subscriber]]\nname = 'a'\nurl = 'https://e.example'\nsecret = '0123456789abcdef'\n"
         "[[subscriber]]\nname = 'a'\nurl = 'https://e.example'\nsecret = '0123456789abcdef'",
         "twice"),
        ("[subscribers]\nname = 'a'", "unknown keys"),
        ("this is not toml", "not TOML"),
    ],
)  # fmt: skip
def test_mistakes_in_the_file_are_named(tmp_path, text, says):
    path = tmp_path / "webhooks.toml"
    path.write_text(text)
    with pytest.raises(ConfigurationError) as refused:
        config.configured({"GCX_WEBHOOK_FILE": str(path)})
    assert says in str(refused.value)


def test_a_missing_file_and_a_bad_timeout_are_named(tmp_path):
    with pytest.raises(ConfigurationError, match="cannot read"):
        config.configured({"GCX_WEBHOOK_FILE": str(tmp_path / "absent.toml")})
    for value in ("0", "61", "soon"):
        with pytest.raises(ConfigurationError, match="GCX_WEBHOOK_TIMEOUT"):
            config.timeout({"GCX_WEBHOOK_TIMEOUT": value})
    assert config.timeout({}) == 10


def test_filters():
    assert config.wants((), "anything")
    assert config.wants(("document.*",), "document.verified")
    assert not config.wants(("document.*",), "application.approved")
    assert config.parse_events(" a.b ,\n c.*, a.b ") == ("a.b", "c.*")
