"""Rendering outbox rows into messages with Jinja2 (StrictUndefined: a missing variable fails).

Templates live in `<type>/subject.txt`, `<type>/body.txt` and `<type>/body.html`; another
channel's short text, when it has one, in `<type>/<channel>.txt` (`approved/sms.txt`). A
deployment's folder (GCX_TEMPLATES_DIR) wins over plugins' folders, which win over the
built-in ones.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from email.utils import parseaddr
from typing import Any

import jinja2

from gcx_core.entities import Notification
from gcx_core.services.accounts import activation_link, reset_link
from gcx_core.services.withdrawals import withdrawal_link
from gcx_core.system import Gcx
from gcx_notify.channels import RenderedMessage


class TemplateError(Exception):
    """Raised when a notification cannot be rendered (a missing template or variable)."""


class _Environment(jinja2.Environment):
    """Templates see the environment's globals as one plain dict.

    Jinja2 gives each template a ChainMap of its own globals over the environment's, and
    flattens it into a new dict for every render, one failed lookup per global. Ours are set
    before the first template loads and never change, so each template gets them flattened once.
    """

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return {**self.globals, **(d or {})}


class Renderer:
    def __init__(self, gcx: Gcx, extra_dirs: list[str]) -> None:
        self.gcx = gcx
        loaders: list[jinja2.BaseLoader] = []
        if gcx.settings.templates_dir is not None:
            loaders.append(jinja2.FileSystemLoader(str(gcx.settings.templates_dir)))
        loaders.extend(jinja2.FileSystemLoader(d) for d in extra_dirs)
        loaders.append(jinja2.PackageLoader("gcx_notify", "templates"))
        self.env = _Environment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html",), default_for_string=False
            ),
            keep_trailing_newline=False,
            # Templates do not change under a running process; not checking saves a stat per use.
            auto_reload=False,
        )
        domain = parseaddr(gcx.settings.mail_from)[1].rpartition("@")[2] or "gcx.invalid"
        self.domain = domain
        self._templates: dict[str, jinja2.Template] = {}
        self._own: dict[str, jinja2.Template | None] = {}  # channels' own texts, found or not

    def message_id(self, notification_id: int) -> str:
        return f"<gcx.notification.{notification_id}@{self.domain}>"

    def context(self, n: Notification) -> dict[str, Any]:
        settings = self.gcx.settings
        base = settings.base_url
        ctx: dict[str, Any] = {
            "programme": settings.programme_name,
            "base_url": base,
            "recipient": n.recipient,
            "activation_hours": settings.activation_ttl_hours,
        }
        ctx.update(n.context)
        if "tracking_code" in ctx:
            ctx["track_url"] = f"{base}/track/{ctx['tracking_code']}"
        app_id = ctx.get("application_id") or n.application_id
        ctx["backoffice_url"] = (
            f"{base}/backoffice/applications/{app_id}"
            if app_id
            else f"{base}/backoffice/notifications"
        )
        status = ctx.get("status")
        if isinstance(status, str) and status in self.gcx.workflow.states:
            ctx["status_label"] = self.gcx.workflow.states[status].label
        selector = ctx.get("activation_selector")
        if selector:
            ctx["activation_url"] = activation_link(self.gcx, selector)
        reset = ctx.get("reset_selector")
        if reset:
            ctx["reset_url"] = reset_link(self.gcx, reset)
        withdrawal = ctx.get("withdrawal_selector")
        if withdrawal and "tracking_code" in ctx:
            ctx["withdraw_url"] = withdrawal_link(self.gcx, ctx["tracking_code"], withdrawal)
        return ctx

    def template(self, path: str) -> jinja2.Template:
        """A loaded template, kept: templates do not change under a running process."""
        found = self._templates.get(path)
        if found is None:
            found = self._templates[path] = self.env.get_template(path)
        return found

    def render(self, n: Notification) -> RenderedMessage:
        ctx = self.context(n)
        name = n.template or n.type
        if n.channel != "email":
            own = self._own_text(name, n.channel)
            if own is not None:
                try:
                    text = own.render(ctx)
                except jinja2.UndefinedError as exc:
                    raise TemplateError(f"template {name!r}: {exc.message}") from None
                return self._message(n, "", " ".join(text.split()), "")
        try:
            # A header: spacing folded and control characters dropped, whatever the data held.
            subject = " ".join(self.template(f"{name}/subject.txt").render(ctx).split())
            subject = "".join(ch for ch in subject if ch.isprintable())
            ctx["subject"] = subject
            text = self.template(f"{name}/body.txt").render(ctx)
            html = self.template(f"{name}/body.html").render(ctx)
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(f"no template {exc.name!r}") from None
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"template {name!r}: {exc.message}") from None
        return self._message(n, subject, text.strip() + "\n", html)

    def _own_text(self, name: str, channel: str) -> jinja2.Template | None:
        """`<name>/<channel>.txt` when a template folder has one (looked up once either way:
        most channels have none, and every message would otherwise search every folder)."""
        path = f"{name}/{channel}.txt"
        if path not in self._own:
            try:
                self._own[path] = self.template(path)
            except jinja2.TemplateNotFound:
                self._own[path] = None
        return self._own[path]

    def _message(self, n: Notification, subject: str, text: str, html: str) -> RenderedMessage:
        return RenderedMessage(
            notification_id=n.id,
            channel=n.channel,
            recipient=n.recipient,
            subject=subject,
            text=text,
            html=html,
            message_id=self.message_id(n.id),
            sent_from=self.gcx.settings.mail_from,
            at=self.gcx.now(),
            type=n.type,
            context=n.context,
        )
