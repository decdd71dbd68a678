"""Every error GCX raises on purpose; HTTP status codes live in gcx_web, not here."""

from __future__ import annotations

from collections.abc import Mapping


class GcxError(Exception):
    """Root of all GCX errors."""


class ValidationError(GcxError):
    """Raised when input is malformed; `errors` maps a field path to its messages."""

    def __init__(self, errors: Mapping[str, list[str]] | Mapping[str, str]) -> None:
        self.errors: dict[str, list[str]] = {
            path: [msgs] if isinstance(msgs, str) else list(msgs) for path, msgs in errors.items()
        }
        summary = "; ".join(f"{path}: {', '.join(msgs)}" for path, msgs in self.errors.items())
        super().__init__(f"invalid input: {summary}")


class NotFoundError(GcxError):
    """Raised when an application, document, user or notification does not exist."""

    def __init__(self, kind: str, key: object) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"{kind} not found: {key}")


class InvalidTransitionError(GcxError):
    """Raised when an action is not allowed from the application's current state."""

    def __init__(self, state: str | None, action: str) -> None:
        self.state = state
        self.action = action
        where = f"state {state!r}" if state is not None else "no state"
        super().__init__(f"action {action!r} is not allowed from {where}")


class UnknownStateError(InvalidTransitionError):
    """Raised when an application sits in a status no loaded plugin defines (its plugin was
    disabled or uninstalled): nothing may move it until that plugin is back."""

    def __init__(self, state: str, action: str) -> None:
        super().__init__(state, action)
        self.args = (
            f"the application is in status {state!r}, which no installed plugin defines: "
            f"no action applies to it until the plugin that defines {state!r} is loaded again",
        )


class GuardFailedError(GcxError):
    """Raised when a transition is allowed from the state but one of its guards refused it."""

    def __init__(self, action: str, reasons: Mapping[str, str]) -> None:
        self.action = action
        self.reasons = dict(reasons)
        super().__init__(f"cannot {action}: " + "; ".join(self.reasons.values()))


class ConflictError(GcxError):
    """Raised when the caller acted on a stale version of an object."""

    def __init__(self, kind: str, key: object, expected: int, actual: int | None) -> None:
        self.kind = kind
        self.key = key
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{kind} {key} changed since it was read (version {expected}, now {actual})"
        )


class DuplicateApplicationError(GcxError):
    """Raised when an active application already uses the submitted email or TIN."""

    def __init__(self, fields: list[str]) -> None:
        self.fields = fields
        super().__init__(
            "an active application already exists with the same " + " and ".join(fields)
        )


class PermissionDeniedError(GcxError):
    """Raised when the actor may not perform the action."""


class AuthenticationError(GcxError):
    """Raised when credentials are wrong or the account cannot sign in; says nothing more."""

    def __init__(self) -> None:
        super().__init__("invalid credentials")


class TokenError(GcxError):
    """Raised when an activation or reset token is unknown, used or expired."""


class DocumentError(GcxError):
    """Root of errors about an uploaded file."""


class FileTooLargeError(DocumentError):
    """Raised when an upload exceeds its requirement's size limit."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"the file is {_size(size)}; the most this document may be is {_size(limit)}"
        )


class UnsupportedFileTypeError(DocumentError):
    """Raised when an upload's content is not one of the types its requirement accepts."""

    def __init__(self, detected: str | None, allowed: tuple[str, ...]) -> None:
        self.detected = detected
        self.allowed = allowed
        what = f"a {_KINDS.get(detected, detected)}" if detected else "of a kind we cannot read"
        wanted = [_KINDS.get(t, t) for t in allowed]
        choices = ", ".join(wanted[:-1]) + " or " + wanted[-1] if len(wanted) > 1 else wanted[0]
        super().__init__(
            f"this file is {what}; send a {choices} (files are checked by what they contain, "
            "not by their name)"
        )


# File types in the words people use for them.
_KINDS = {"application/pdf": "PDF", "image/png": "PNG image", "image/jpeg": "JPEG image"}


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} bytes"


class PluginError(GcxError):
    """Raised when a plugin misbehaves: a bad registration, a wrapper on an async hook."""


class ConfigurationError(GcxError):
    """Raised when settings are missing or contradictory."""
