"""Settings: one frozen object, built from the environment in one place.

GCX_* names win; the names of the system GCX replaces (REDIS_URL, CELERY_BROKER_URL, EMAIL_*)
are accepted so an existing deployment's environment keeps working.
"""

from __future__ import annotations

import os
import secrets
import tomllib
import zoneinfo
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import attrs

from gcx_core.deadlines import parse_holidays, parse_weekdays
from gcx_core.exceptions import ConfigurationError

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_MAIL_FROM = "GCX <no-reply@gcx.invalid>"
DEFAULT_MAX_UPLOAD = 10 * 1024 * 1024
DEFAULT_MAX_ATTEMPTS = 4  # the first try and three retries

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings' source: the configuration file named by GCX_CONFIG (TOML), under the
    environment (a variable set in both wins from the environment).

    The file's keys are the variables' names without `GCX_`, in lower case
    (`database_url = "..."`, `smtp_port = 587`, `disable_plugins = ["a", "b"]`); a key that
    names no setting is an error, so a typo does not pass silently.
    """
    env = dict(os.environ if env is None else env)
    path = env.get("GCX_CONFIG", "").strip()
    if not path:
        return env
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigurationError(
            f"GCX_CONFIG names {path!r}, which cannot be read: {exc}"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from None
    merged: dict[str, str] = {}
    unknown = []
    for key, value in data.items():
        name = "GCX_" + key.upper()
        if name not in SETTING_NAMES:
            unknown.append(key)
            continue
        if isinstance(value, bool):
            merged[name] = "true" if value else "false"
        elif isinstance(value, list):
            merged[name] = ",".join(str(v) for v in value)
        elif isinstance(value, int | float | str):
            merged[name] = str(value)
        else:
            raise ConfigurationError(f"{path}: {key} must be a string, number, boolean or list")
    if unknown:
        raise ConfigurationError(f"{path}: unknown settings: {', '.join(sorted(unknown))}")
    merged.update(env)
    return merged


# Every variable GCX reads (docs/configuration.md documents each; a test checks both ways).
SETTING_NAMES = frozenset(
    {
        "GCX_ACTIVATION_TTL_HOURS",
        "GCX_ALLOWED_ORIGINS",
        "GCX_BASE_URL",
        "GCX_BROKER_URL",
        "GCX_DATABASE_URL",
        "GCX_DATA_DIR",
        "GCX_DISABLE_PLUGINS",
        "GCX_DOCUMENTS_DEADLINE_DAYS",
        "GCX_DOCUMENTS_REMINDER_DAYS",
        "GCX_DRAFT_FILE_HOURS",
        "GCX_HOLIDAYS",
        "GCX_HOLIDAYS_FILE",
        "GCX_RENEWAL_REMINDER_DAYS",
        "GCX_REVIEW_REMINDER_DAYS",
        "GCX_REVIEW_TARGET_DAYS",
        "GCX_WORKING_DAYS",
        "GCX_FILES_DIR",
        "GCX_LOG_FORMAT",
        "GCX_LOG_LEVEL",
        "GCX_MAIL_FROM",
        "GCX_MAX_UPLOAD_BYTES",
        "GCX_METRICS_BIND",
        "GCX_METRICS_PORT",
        "GCX_METRICS_TOKEN",
        "GCX_NOTIFICATION_LEASE_SECONDS",
        "GCX_NOTIFICATION_MAX_ATTEMPTS",
        "GCX_NOTIFICATION_RETENTION_DAYS",
        "GCX_PHONE_COUNTRY",
        "GCX_PROGRAMME_NAME",
        "GCX_RATE_LIMITS",
        "GCX_REDIS_URL",
        "GCX_SECRET_KEY",
        "GCX_SMTP_CONNECTIONS",
        "GCX_SMTP_HOST",
        "GCX_SMTP_PASSWORD",
        "GCX_SMTP_PORT",
        "GCX_SMTP_STARTTLS",
        "GCX_SMTP_TLS",
        "GCX_SMTP_USERNAME",
        "GCX_SMTP_VALIDATE_CERTS",
        "GCX_STOP_TIMEOUT",
        "GCX_TEMPLATES_DIR",
        "GCX_TIME_ZONE",
        "GCX_TRUSTED_PROXIES",
        "GCX_AUTO_ASSIGN",
        "GCX_FOUR_EYES",
        "GCX_APPROVER_NOT_REVIEWER",
    }
)


def _first(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = env.get(name)
        if value is not None and value.strip() != "":
            return value.strip()
    return None


def _bool(env: Mapping[str, str], *names: str, default: bool) -> bool:
    for name in names:
        if name in env:
            value = env[name].strip().lower()
            if value in _TRUE:
                return True
            if value in _FALSE:
                return False
            raise ConfigurationError(f"{name} must be true or false, not {env[name]!r}")
    return default


def _int(env: Mapping[str, str], *names: str, default: int, minimum: int = 0) -> int:
    for name in names:
        if name in env and env[name].strip():
            try:
                value = int(env[name])
            except ValueError:
                raise ConfigurationError(
                    f"{name} must be a whole number, not {env[name]!r}"
                ) from None
            if value < minimum:
                raise ConfigurationError(f"{name} must be at least {minimum}")
            return value
    return default


@attrs.frozen
class SmtpSettings:
    host: str
    port: int = 587
    starttls: bool = True
    tls: bool = False
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    timeout: float = 30.0
    validate_certs: bool = True
    connections: int = 10


@attrs.frozen
class Settings:
    data_dir: Path = Path("gcx-data")
    database_url: str = ""
    redis_url: str | None = None
    broker_url: str | None = None
    secret_key: str = attrs.field(default="", repr=False)
    base_url: str = DEFAULT_BASE_URL
    mail_from: str = DEFAULT_MAIL_FROM
    smtp: SmtpSettings | None = None
    phone_country: str = "GH"
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    notification_max_attempts: int = DEFAULT_MAX_ATTEMPTS
    activation_ttl_hours: int = 72
    disabled_plugins: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    files_dir: Path | None = None
    sqlite_pool_size: int = 8
    programme_name: str = "GCX Supplier Programme"
    templates_dir: Path | None = None
    notification_lease_seconds: int = 300
    notification_retention_days: int = 30
    draft_file_hours: int = 24
    time_zone: str = "UTC"
    log_format: str = "text"
    log_level: str = "INFO"
    stop_timeout: int = 20
    metrics_token: str | None = attrs.field(default=None, repr=False)
    metrics_port: int | None = None
    metrics_bind: str = "127.0.0.1"
    auto_assign: str = "off"
    four_eyes: bool = False
    approver_not_reviewer: bool = False
    # Deadlines (gcx_core.deadlines): days before an application in documents_requested is
    # withdrawn as expired (0: never) and the reminders ahead of it; the review target of a
    # pending_review application in working days (0: none) and its reminder.
    documents_deadline_days: int = 30
    documents_reminder_days: tuple[int, ...] = (7, 2)
    review_target_days: int = 5
    review_reminder_days: tuple[int, ...] = (1,)
    # Days before a supplier's document expires that they are reminded to renew it.
    renewal_reminder_days: tuple[int, ...] = (30, 7)
    working_days: frozenset[int] = frozenset(range(5))
    holidays: frozenset[date] = frozenset()

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'gcx.db'}"

    @property
    def resolved_files_dir(self) -> Path:
        return self.files_dir or self.data_dir / "files"

    @property
    def scale_out(self) -> bool:
        """Scale-out mode: a shared broker and channels in Redis instead of in-process ones."""
        return self.redis_url is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = environment() if env is None else env
        data_dir = Path(_first(env, "GCX_DATA_DIR") or "gcx-data")
        redis_url = _first(env, "GCX_REDIS_URL", "REDIS_URL")
        smtp_host = _first(env, "GCX_SMTP_HOST", "EMAIL_HOST")
        smtp = None
        if smtp_host:
            tls = _bool(env, "GCX_SMTP_TLS", "EMAIL_USE_SSL", default=False)
            smtp = SmtpSettings(
                host=smtp_host,
                port=_int(
                    env, "GCX_SMTP_PORT", "EMAIL_PORT", default=465 if tls else 587, minimum=1
                ),
                starttls=_bool(env, "GCX_SMTP_STARTTLS", "EMAIL_USE_TLS", default=not tls),
                tls=tls,
                username=_first(env, "GCX_SMTP_USERNAME", "EMAIL_HOST_USER"),
                password=_first(env, "GCX_SMTP_PASSWORD", "EMAIL_HOST_PASSWORD"),
                validate_certs=_bool(env, "GCX_SMTP_VALIDATE_CERTS", default=True),
                connections=_int(env, "GCX_SMTP_CONNECTIONS", default=10, minimum=1),
            )
            if smtp.tls and smtp.starttls:
                raise ConfigurationError(
                    "choose either implicit TLS or STARTTLS for SMTP, not both"
                )
        files_dir = _first(env, "GCX_FILES_DIR")
        templates_dir = _first(env, "GCX_TEMPLATES_DIR")
        return cls(
            data_dir=data_dir,
            database_url=_first(env, "GCX_DATABASE_URL", "DATABASE_URL") or "",
            redis_url=redis_url,
            broker_url=_first(env, "GCX_BROKER_URL", "CELERY_BROKER_URL") or redis_url,
            secret_key=_first(env, "GCX_SECRET_KEY", "SECRET_KEY") or "",
            base_url=(_first(env, "GCX_BASE_URL") or DEFAULT_BASE_URL).rstrip("/"),
            mail_from=_first(env, "GCX_MAIL_FROM", "DEFAULT_FROM_EMAIL") or DEFAULT_MAIL_FROM,
            smtp=smtp,
            phone_country=(_first(env, "GCX_PHONE_COUNTRY") or "GH").upper(),
            max_upload_bytes=_int(
                env, "GCX_MAX_UPLOAD_BYTES", default=DEFAULT_MAX_UPLOAD, minimum=1
            ),
            notification_max_attempts=_int(
                env, "GCX_NOTIFICATION_MAX_ATTEMPTS", default=DEFAULT_MAX_ATTEMPTS, minimum=1
            ),
            activation_ttl_hours=_int(env, "GCX_ACTIVATION_TTL_HOURS", default=72, minimum=1),
            disabled_plugins=_split(_first(env, "GCX_DISABLE_PLUGINS")),
            trusted_proxies=_split(_first(env, "GCX_TRUSTED_PROXIES")),
            files_dir=Path(files_dir) if files_dir else None,
            programme_name=_first(env, "GCX_PROGRAMME_NAME") or "GCX Supplier Programme",
            templates_dir=Path(templates_dir) if templates_dir else None,
            notification_lease_seconds=_int(
                env, "GCX_NOTIFICATION_LEASE_SECONDS", default=300, minimum=1
            ),
            notification_retention_days=_int(
                env, "GCX_NOTIFICATION_RETENTION_DAYS", default=30, minimum=1
            ),
            draft_file_hours=_int(env, "GCX_DRAFT_FILE_HOURS", default=24, minimum=1),
            time_zone=_time_zone(_first(env, "GCX_TIME_ZONE") or "UTC"),
            stop_timeout=_int(env, "GCX_STOP_TIMEOUT", default=20, minimum=1),
            metrics_token=_first(env, "GCX_METRICS_TOKEN"),
            metrics_port=_int(env, "GCX_METRICS_PORT", default=0, minimum=0) or None,
            metrics_bind=_first(env, "GCX_METRICS_BIND") or "127.0.0.1",
            log_format=_choice(env, "GCX_LOG_FORMAT", ("text", "json"), "text"),
            four_eyes=_bool(env, "GCX_FOUR_EYES", default=False),
            approver_not_reviewer=_bool(env, "GCX_APPROVER_NOT_REVIEWER", default=False),
            auto_assign=_choice(
                env, "GCX_AUTO_ASSIGN", ("off", "round_robin", "least_loaded"), "off"
            ),
            documents_deadline_days=_int(env, "GCX_DOCUMENTS_DEADLINE_DAYS", default=30),
            documents_reminder_days=_days(env, "GCX_DOCUMENTS_REMINDER_DAYS", (7, 2)),
            review_target_days=_int(env, "GCX_REVIEW_TARGET_DAYS", default=5),
            review_reminder_days=_days(env, "GCX_REVIEW_REMINDER_DAYS", (1,)),
            renewal_reminder_days=_days(env, "GCX_RENEWAL_REMINDER_DAYS", (30, 7)),
            working_days=parse_weekdays(_first(env, "GCX_WORKING_DAYS") or "mon,tue,wed,thu,fri"),
            holidays=_holidays(env),
            log_level=_choice(
                env, "GCX_LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), "INFO", upper=True
            ),
        )

    def with_secret_key(self) -> Settings:
        """Return settings whose secret key is set, keeping a generated one in the data dir.

        A scale-out deployment must set GCX_SECRET_KEY: processes on other hosts share no file.
        """
        if self.secret_key:
            return self
        if self.scale_out:
            raise ConfigurationError("GCX_SECRET_KEY must be set when GCX_REDIS_URL is set")
        path = self.data_dir / "secret_key"
        if path.exists():
            key = path.read_text().strip()
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            key = secrets.token_urlsafe(32)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(key)
        return attrs.evolve(self, secret_key=key)


def _choice(
    env: Mapping[str, str],
    name: str,
    choices: tuple[str, ...],
    default: str,
    *,
    upper: bool = False,
) -> str:
    raw = _first(env, name)
    if raw is None:
        return default
    value = raw.upper() if upper else raw.lower()
    if value not in choices:
        raise ConfigurationError(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
    return value


def _days(env: Mapping[str, str], name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    raw = _first(env, name)
    if raw is None:
        return default
    parts = _split(raw)
    if not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ConfigurationError(
            f"{name} lists whole numbers of days above 0 separated by commas, not {raw!r}"
        )
    return tuple(sorted({int(p) for p in parts}, reverse=True))


def _holidays(env: Mapping[str, str]) -> frozenset[date]:
    """GCX_HOLIDAYS (dates separated by commas) and GCX_HOLIDAYS_FILE (one date per line,
    `#` starts a comment), together."""
    days = parse_holidays(_first(env, "GCX_HOLIDAYS") or "")
    path = _first(env, "GCX_HOLIDAYS_FILE")
    if path:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigurationError(f"GCX_HOLIDAYS_FILE {path!r} cannot be read: {exc}") from None
        lines = (line.split("#", 1)[0] for line in text.splitlines())
        days |= parse_holidays(",".join(lines))
    return days


def _time_zone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"GCX_TIME_ZONE must be an IANA time zone such as Africa/Accra, not {name!r}"
        ) from None
    return name


def _split(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(part.strip() for part in value.split(",") if part.strip())
