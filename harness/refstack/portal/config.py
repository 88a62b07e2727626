"""Settings of the reference portal, read from environment variables.

VoxBento's own variable names are kept where VoxBento has them (contract section 1.2). Knobs that
VoxBento hard-codes (pool sizing, worker cap, rate limits: contract sections 9, 7.2, 10) get
``REFSTACK_*`` names here so tests and drills can move the limits; their defaults are VoxBento HEAD.

``REFSTACK_VOXBENTO_DATE`` picks the side of every dated change of contract section 15 (see ``timeline``);
a specific knob (``DEBUG``, ``REFSTACK_LOGIN_RATE_LIMIT``, ``REFSTACK_LISTENER_RATE_LIMIT``) that is set
explicitly overrides what the date implies. The uvicorn knobs (WebSocket implementation and pings) are read
here for validation and applied by ``stack.py`` on uvicorn's command line.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Mapping

from . import timeline
from .timeline import Timeline

# Contract 1.2: startup refuses these JWT secrets unless DEBUG is true.
WEAK_SECRETS = frozenset({"change-me", "", "secret", "your-secret-key"})
# The media engineer's stand-in for speech recognition (captioner.py); tests point it at scripted providers.
DEFAULT_CAPTION_PROVIDER = "harness.refstack.portal.captioner:transcribe"
# uvicorn's --ws choices; "websockets" is the legacy protocol of contract 1.1 and 8.3.
UVICORN_WS_IMPLS = ("websockets", "websockets-sansio", "wsproto")


class ConfigError(ValueError):
    """A knob has a value the portal cannot run with (reported as one line by the CLI)."""


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{name}={raw!r}: expected true/false")


def _date(name: str, raw: str) -> dt.date:
    try:
        return timeline.parse_date(name, raw)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _choice(name: str, raw: str, choices: tuple[str, ...]) -> str:
    if raw not in choices:
        raise ConfigError(f"{name}={raw!r}: expected one of {', '.join(choices)}")
    return raw


def _int(name: str, raw: str, minimum: int = 0) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected an integer") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r}: must be >= {minimum}")
    return value


def _provider_spec(raw: str) -> str:
    module, sep, attr = raw.partition(":")
    if not module or (sep and not attr):
        raise ConfigError(f"REFSTACK_CAPTION_PROVIDER={raw!r}: expected module:function")
    return raw


def _float(name: str, raw: str, minimum: float = 0.0) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a number") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r}: must be >= {minimum}")
    return value


@dataclasses.dataclass(frozen=True)
class Settings:
    # --- VoxBento's own names (contract 1.2) ---
    debug: bool = False
    secret_key: str = "change-me"
    jwt_secret: str = ""
    jwt_expiry_seconds: int = 86400
    admin_password: str = ""
    booth_access_token: str = ""
    database_url: str = "sqlite+aiosqlite:///./interpretation.db"
    mediamtx_whip_base: str = "http://localhost:8889"
    mediamtx_api_base: str = "http://localhost:9997"
    mediamtx_rtsp_base: str = "rtsp://mediamtx:8554"
    public_base_url: str = "https://voxbento.com"
    # Contract 1.2: empty SMTP_HOST = emails are not sent, the link is logged at WARNING instead.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_from_email: str = "noreply@voxbento.com"
    # --- reference-stack knobs for limits VoxBento hard-codes ---
    db_pool_size: int = 5  # contract 9.1: SQLAlchemy QueuePool default
    db_max_overflow: int = 10
    db_pool_timeout_s: float = 30.0
    max_total_workers: int = 10  # contract 7.2: MAX_TOTAL_WORKERS
    login_rate_limit: bool = True  # contract 10: /login 10 per email per hour (since 2026-07-10)
    listener_rate_limit: bool = True  # contract 10: 10 failures per IP per 60 s (since 2026-07-06)
    bcrypt_rounds: int = 12  # contract 3.3: bcrypt.gensalt() default, run on the event loop
    webhook_loop: bool = True  # contract 14.26: one DB session per second, forever
    # Contract 9.3: aiosmtplib's default timeout; a server that accepts but never answers holds the
    # /register transaction (and its pooled connection and SQLite write lock) this long.
    smtp_timeout_s: float = 60.0
    # Contract 7.3 stand-in: `module:function` of the speech-recognition stand-in the workers run.
    caption_provider: str = DEFAULT_CAPTION_PROVIDER
    # --- fault knobs: what a broken or mismatched target does, for the harness's own tests ---
    fault_joined_booth: str = ""  # booth:joined names this booth instead of the one joined (a phantom join)
    # --- contract 15: which VoxBento version the portal plays ---
    voxbento_date: dt.date = timeline.HEAD_DATE
    # --- uvicorn (contract 1.1: VoxBento runs uvicorn's defaults) ---
    ws_impl: str = "websockets"  # the `websockets` legacy protocol, what uvicorn 0.47 picks with websockets installed
    ws_ping_interval_s: float = 20.0
    ws_ping_timeout_s: float = 20.0

    @property
    def effective_jwt_secret(self) -> str:
        return self.jwt_secret or self.secret_key

    @property
    def timeline(self) -> Timeline:
        return Timeline(self.voxbento_date)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        d = cls()
        get = env.get

        def s(name: str, default: str) -> str:
            return get(name, default)

        date = _date("REFSTACK_VOXBENTO_DATE", s("REFSTACK_VOXBENTO_DATE", "HEAD"))
        era = Timeline(date)

        def dated(name: str, change: timeline.Change) -> bool:
            """A switch that follows the date unless its own knob is set explicitly."""
            return _bool(name, env[name]) if name in env else era.has(change)

        return cls(
            voxbento_date=date,
            # Contract 1.2 (86615cb, 2026-06-30): DEBUG defaults to false; before it, to true.
            debug=_bool("DEBUG", env["DEBUG"]) if "DEBUG" in env else not era.has(timeline.DEBUG_DEFAULT_FALSE),
            secret_key=s("SECRET_KEY", d.secret_key),
            jwt_secret=s("JWT_SECRET", d.jwt_secret),
            jwt_expiry_seconds=_int("JWT_EXPIRY_SECONDS", s("JWT_EXPIRY_SECONDS", str(d.jwt_expiry_seconds)), 1),
            admin_password=s("ADMIN_PASSWORD", d.admin_password),
            booth_access_token=s("BOOTH_ACCESS_TOKEN", d.booth_access_token),
            database_url=s("DATABASE_URL", d.database_url),
            mediamtx_whip_base=s("MEDIAMTX_WHIP_BASE", d.mediamtx_whip_base).rstrip("/"),
            mediamtx_api_base=s("MEDIAMTX_API_BASE", d.mediamtx_api_base).rstrip("/"),
            mediamtx_rtsp_base=s("MEDIAMTX_RTSP_BASE", d.mediamtx_rtsp_base).rstrip("/"),
            public_base_url=s("PUBLIC_BASE_URL", d.public_base_url).rstrip("/"),
            smtp_host=s("SMTP_HOST", d.smtp_host).strip(),
            smtp_port=_int("SMTP_PORT", s("SMTP_PORT", str(d.smtp_port)), 1),
            smtp_from_email=s("SMTP_FROM_EMAIL", d.smtp_from_email),
            db_pool_size=_int("REFSTACK_DB_POOL_SIZE", s("REFSTACK_DB_POOL_SIZE", str(d.db_pool_size)), 1),
            db_max_overflow=_int("REFSTACK_DB_MAX_OVERFLOW", s("REFSTACK_DB_MAX_OVERFLOW", str(d.db_max_overflow))),
            db_pool_timeout_s=_float("REFSTACK_DB_POOL_TIMEOUT_S", s("REFSTACK_DB_POOL_TIMEOUT_S", str(d.db_pool_timeout_s)), 0.01),
            max_total_workers=_int("REFSTACK_MAX_TOTAL_WORKERS", s("REFSTACK_MAX_TOTAL_WORKERS", str(d.max_total_workers))),
            # Contract 10: the /login limiter since f11389f (2026-07-10), the listener limiter since 07ebe53 (2026-07-06).
            login_rate_limit=dated("REFSTACK_LOGIN_RATE_LIMIT", timeline.EMAIL_VERIFICATION),
            listener_rate_limit=dated("REFSTACK_LISTENER_RATE_LIMIT", timeline.LISTENER_LIMITER),
            bcrypt_rounds=_int("REFSTACK_BCRYPT_ROUNDS", s("REFSTACK_BCRYPT_ROUNDS", str(d.bcrypt_rounds)), 4),
            webhook_loop=_bool("REFSTACK_WEBHOOK_LOOP", s("REFSTACK_WEBHOOK_LOOP", "true")),
            smtp_timeout_s=_float("REFSTACK_SMTP_TIMEOUT_S", s("REFSTACK_SMTP_TIMEOUT_S", str(d.smtp_timeout_s)), 0.01),
            caption_provider=_provider_spec(s("REFSTACK_CAPTION_PROVIDER", d.caption_provider)),
            fault_joined_booth=s("REFSTACK_FAULT_JOINED_BOOTH", d.fault_joined_booth).strip(),
            ws_impl=_choice("REFSTACK_UVICORN_WS", s("REFSTACK_UVICORN_WS", d.ws_impl), UVICORN_WS_IMPLS),
            ws_ping_interval_s=_float("REFSTACK_WS_PING_INTERVAL_S", s("REFSTACK_WS_PING_INTERVAL_S", str(d.ws_ping_interval_s)), 0.1),
            ws_ping_timeout_s=_float("REFSTACK_WS_PING_TIMEOUT_S", s("REFSTACK_WS_PING_TIMEOUT_S", str(d.ws_ping_timeout_s)), 0.1),
        )

    def validate_production_secrets(self) -> None:
        """Contract 1.2: VoxBento refuses to start with a weak JWT secret unless DEBUG is true."""
        if not self.timeline.has(timeline.WEAK_SECRET_REFUSAL):
            return  # Contract 1.2 (cf72e29): no startup check before 2026-06-29.
        if not self.debug and self.effective_jwt_secret in WEAK_SECRETS:
            raise ConfigError("SECRET_KEY/JWT_SECRET is weak or empty; set a strong SECRET_KEY (or DEBUG=true)")


# One place that documents every knob, for `voxload stack up --help` and the README.
KNOBS: dict[str, str] = {
    "DEBUG": "true skips the weak-secret check and echoes SQL (VoxBento); default false (true before 2026-06-30)",
    "SECRET_KEY": "HS256 key for every JWT (VoxBento); generated by `voxload stack up` when unset",
    "JWT_SECRET": "overrides SECRET_KEY for JWTs (VoxBento)",
    "JWT_EXPIRY_SECONDS": "lifetime of admin/user/session JWTs and cookies, default 86400 (VoxBento)",
    "ADMIN_PASSWORD": "password for /admin/login; generated and printed by `voxload stack up` when unset",
    "BOOTH_ACCESS_TOKEN": "empty = open mode; set = auth mode for the booth API and WebSockets (VoxBento)",
    "DATABASE_URL": "SQLAlchemy URL, default a SQLite file in the stack's data directory (VoxBento)",
    "MEDIAMTX_WHIP_BASE": "prefix of WHIP/WHEP URLs handed to clients (VoxBento)",
    "MEDIAMTX_API_BASE": "MediaMTX control API used for health and path creation (VoxBento)",
    "PUBLIC_BASE_URL": "base of invite links and caption_url (VoxBento)",
    "SMTP_HOST": "empty = verification/magic links are logged at WARNING instead of mailed (VoxBento); plain SMTP only here",
    "SMTP_PORT": "SMTP port, default 587 (VoxBento)",
    "SMTP_FROM_EMAIL": "sender address, default noreply@voxbento.com (VoxBento)",
    "REFSTACK_VOXBENTO_DATE": (
        "YYYY-MM-DD or HEAD (default HEAD = 2026-08-23): play VoxBento as of that date (contract 15), 2026-06-07 at the"
        " earliest. Before 2026-08-14 booth ids are {slug}-{lang}, paths {slug}/{lang}, the booth page"
        " /interpreter/{slug}/{lang} and the transcription/delete routes have no /rooms/{room_id}; before 2026-08-09"
        " the WebSocket check (with BOOTH_ACCESS_TOKEN set) is ?token= only; before 2026-07-10 no /login,"
        " magic-link or forgot-password limiter and no email verification (register takes password +"
        " password_confirm >= 8 chars and logs in); before 2026-07-06 no listener limiter; before 2026-06-30 DEBUG"
        " defaults to true; before 2026-06-29 no weak-secret refusal; before 2026-06-21 no audio-delay route; before"
        " 2026-06-08 the worker cap counts external-API workers only and the start route answers 500 at it."
        " The specific knobs below override the date"
    ),
    "REFSTACK_DB_POOL_SIZE": "SQLAlchemy pool size, default 5 (VoxBento: not configurable)",
    "REFSTACK_DB_MAX_OVERFLOW": "SQLAlchemy max overflow, default 10",
    "REFSTACK_DB_POOL_TIMEOUT_S": "seconds a request waits for a pooled connection, default 30",
    "REFSTACK_MAX_TOTAL_WORKERS": "transcription worker cap, default 10 (VoxBento: MAX_TOTAL_WORKERS)",
    "REFSTACK_LOGIN_RATE_LIMIT": "true/false: /login 10 attempts per email per hour, default from the date (true at HEAD)",
    "REFSTACK_LISTENER_RATE_LIMIT": "true/false: listener join-code limiter, default from the date (true at HEAD)",
    "REFSTACK_BCRYPT_ROUNDS": "bcrypt cost, default 12 (VoxBento's gensalt default)",
    "REFSTACK_WEBHOOK_LOOP": "true/false: the once-per-second webhook DB loop, default true",
    "REFSTACK_SMTP_TIMEOUT_S": "seconds an SMTP exchange may take inside the /register transaction, default 60 (aiosmtplib)",
    "REFSTACK_CAPTION_PROVIDER": f"module:function of the transcription stand-in, default {DEFAULT_CAPTION_PROVIDER}",
    "REFSTACK_FAULT_JOINED_BOOTH": (
        "fault: booth:joined answers with the state of this booth id instead of the one joined, as a target older"
        " than d2bee53 joins a phantom booth (contract 15); default empty (off)"
    ),
    "REFSTACK_UVICORN_WS": "uvicorn WebSocket implementation, default websockets (the legacy protocol VoxBento runs)",
    "REFSTACK_WS_PING_INTERVAL_S": (
        "uvicorn WebSocket ping interval, default 20; a half-open socket is reaped after interval + timeout + the"
        " legacy protocol's fixed 10 s close timeout (contract 8.4: 45-50 s)"
    ),
    "REFSTACK_WS_PING_TIMEOUT_S": "uvicorn WebSocket ping timeout, default 20",
}
