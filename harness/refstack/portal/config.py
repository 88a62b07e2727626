"""Settings of the reference portal, read from environment variables.

VoxBento's own variable names are kept where VoxBento has them (contract section 1.2). Knobs that
VoxBento hard-codes (pool sizing, worker cap, rate limits: contract sections 9, 7.2, 10) get
``REFSTACK_*`` names here so tests and drills can move the limits; their defaults are VoxBento HEAD.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

# Contract 1.2: startup refuses these JWT secrets unless DEBUG is true.
WEAK_SECRETS = frozenset({"change-me", "", "secret", "your-secret-key"})


class ConfigError(ValueError):
    """A knob has a value the portal cannot run with (reported as one line by the CLI)."""


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{name}={raw!r}: expected true/false")


def _int(name: str, raw: str, minimum: int = 0) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected an integer") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r}: must be >= {minimum}")
    return value


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

    @property
    def effective_jwt_secret(self) -> str:
        return self.jwt_secret or self.secret_key

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        d = cls()
        get = env.get

        def s(name: str, default: str) -> str:
            return get(name, default)

        return cls(
            debug=_bool("DEBUG", s("DEBUG", "false")),
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
            login_rate_limit=_bool("REFSTACK_LOGIN_RATE_LIMIT", s("REFSTACK_LOGIN_RATE_LIMIT", "true")),
            listener_rate_limit=_bool("REFSTACK_LISTENER_RATE_LIMIT", s("REFSTACK_LISTENER_RATE_LIMIT", "true")),
            bcrypt_rounds=_int("REFSTACK_BCRYPT_ROUNDS", s("REFSTACK_BCRYPT_ROUNDS", str(d.bcrypt_rounds)), 4),
            webhook_loop=_bool("REFSTACK_WEBHOOK_LOOP", s("REFSTACK_WEBHOOK_LOOP", "true")),
            smtp_timeout_s=_float("REFSTACK_SMTP_TIMEOUT_S", s("REFSTACK_SMTP_TIMEOUT_S", str(d.smtp_timeout_s)), 0.01),
        )

    def validate_production_secrets(self) -> None:
        """Contract 1.2: VoxBento refuses to start with a weak JWT secret unless DEBUG is true."""
        if not self.debug and self.effective_jwt_secret in WEAK_SECRETS:
            raise ConfigError("SECRET_KEY/JWT_SECRET is weak or empty; set a strong SECRET_KEY (or DEBUG=true)")


# One place that documents every knob, for `voxload stack up --help` and the README.
KNOBS: dict[str, str] = {
    "DEBUG": "true skips the weak-secret check (VoxBento)",
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
    "REFSTACK_DB_POOL_SIZE": "SQLAlchemy pool size, default 5 (VoxBento: not configurable)",
    "REFSTACK_DB_MAX_OVERFLOW": "SQLAlchemy max overflow, default 10",
    "REFSTACK_DB_POOL_TIMEOUT_S": "seconds a request waits for a pooled connection, default 30",
    "REFSTACK_MAX_TOTAL_WORKERS": "transcription worker cap, default 10 (VoxBento: MAX_TOTAL_WORKERS)",
    "REFSTACK_LOGIN_RATE_LIMIT": "true/false: /login 10 attempts per email per hour, default true",
    "REFSTACK_LISTENER_RATE_LIMIT": "true/false: listener join-code limiter, default true",
    "REFSTACK_BCRYPT_ROUNDS": "bcrypt cost, default 12 (VoxBento's gensalt default)",
    "REFSTACK_WEBHOOK_LOOP": "true/false: the once-per-second webhook DB loop, default true",
    "REFSTACK_SMTP_TIMEOUT_S": "seconds an SMTP exchange may take inside the /register transaction, default 60 (aiosmtplib)",
}
