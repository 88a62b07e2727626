"""Probe ``security``: which brute-force limiters exist and which do not, and whether admin forms check origin.

Contract 10 lists the limiters (``/login`` 10 per email per hour, listener join code 10 failures per IP
per 60 s) and the routes without any (``/admin/login``, ``/register``); contract 1.1 says ``X-Forwarded-For``
from 127.0.0.1 picks the apparent client IP; contract 3.9 says there is no CSRF protection. This probe
tries each with a bounded number of requests (at most ``MAX_ATTEMPTS`` per check) and reports what it met.
It runs only with ``--i-own-this-target``: it sends wrong passwords, creates users and an event.
"""

from __future__ import annotations

import argparse
import secrets
import time

from ..clients.admin import AdminClient
from ..clients.errors import AuthRejected, RateLimited
from ..clients.listener import ListenerClient
from ..clients.users import LoginOutcome, RegisterOutcome, UserClient
from ..contract import routes
from ..contract.credentials import JOIN_CODE_ALPHABET, JOIN_CODE_LENGTH
from .base import Probe, ProbeContext
from .event import provision
from .finding import DataFile, Finding, Limit, Plot, PlotKind, Severity

MAX_ATTEMPTS = 100
CROSS_SITE_ORIGIN = "https://attacker.invalid"
LABELS = {"login_per_email": f"{routes.USER_LOGIN.name} for one email", "admin_login": routes.ADMIN_LOGIN.name,
          "register": routes.USER_REGISTER.name,
          "join_code_per_ip": "wrong listener join codes from one IP"}

LIMITED = "limited"
ABSENT = "absent"
BYPASSED = "bypassed"
NOT_BYPASSED = "not_bypassed"
ACCEPTED = "accepted"
REFUSED = "refused"

ATTEMPT_COLUMNS = {
    "t_s": "seconds since the probe started",
    "check": "login_per_email | admin_login | register | join_code_per_ip | join_code_xff | csrf_admin_form",
    "attempt": "1-based attempt number within the check",
    "status": "HTTP status of the answer",
    "limited": "1 if the answer was 429, else 0",
}
LIMIT_COLUMNS = {
    "check": "what was tried (see attempts.csv)",
    "attempts": "requests sent (count)",
    "first_429_at": "attempt number of the first 429 (empty: never limited)",
    "limit_value": "attempts accepted before the limiter answered 429 (count; empty when absent)",
    "rate_per_s": "attempts per second the probe reached without being stopped (1/s)",
    "verdict": "limited | absent | bypassed | not_bypassed | accepted | refused",
}


class SecurityProbe(Probe):
    name = "security"
    help = "brute-force limiters present/absent, X-Forwarded-For bypass, cross-origin admin form (needs --i-own-this-target)"
    knobs = ("REFSTACK_LOGIN_RATE_LIMIT", "REFSTACK_LISTENER_RATE_LIMIT")
    knob_defaults = {"REFSTACK_LOGIN_RATE_LIMIT": True, "REFSTACK_LISTENER_RATE_LIMIT": True}
    default_budget_s = 180.0
    needs_ownership = True

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--i-own-this-target", dest="owns_target", action="store_true",
                            help="confirm that you own the target: the probe sends wrong passwords, registers users, creates an event")
        parser.add_argument("--login-attempts", type=int, default=15, metavar="N", help="wrong /login attempts for one email (default 15)")
        parser.add_argument("--admin-attempts", type=int, default=30, metavar="N", help="wrong /admin/login attempts (default 30)")
        parser.add_argument("--register-attempts", type=int, default=20, metavar="N", help="/register calls with new emails (default 20)")
        parser.add_argument("--join-attempts", type=int, default=15, metavar="N", help="wrong join codes from one IP (default 15)")

    @classmethod
    def check_arguments(cls, args: argparse.Namespace) -> None:
        if not args.owns_target:
            raise ValueError("the security probe runs only against a target you own: add --i-own-this-target")
        for flag in ("login_attempts", "admin_attempts", "register_attempts", "join_attempts"):
            value = getattr(args, flag)
            if not 1 <= value <= MAX_ATTEMPTS:
                raise ValueError(f"--{flag.replace('_', '-')} {value}: must be 1..{MAX_ATTEMPTS}")

    def run(self, ctx: ProbeContext) -> Finding:
        attempts = ctx.csv("attempts.csv", ATTEMPT_COLUMNS)
        limits = ctx.csv("limits.csv", LIMIT_COLUMNS)
        run = _Checks(ctx, attempts, limits)
        event = provision(ctx.target, self.name, 1)
        try:
            run.login_per_email(ctx.args.login_attempts)
            run.admin_login(ctx.args.admin_attempts)
            run.register(ctx.args.register_attempts)
            run.join_code(event.slug, event.join_code, ctx.args.join_attempts)
            run.csrf_admin_form()
        finally:
            event.teardown()
        return run.finding(self)


class _Checks:
    def __init__(self, ctx: ProbeContext, attempts, limits) -> None:
        self.ctx = ctx
        self.attempts = attempts
        self.limits = limits
        self.results: dict[str, dict] = {}
        self.tag = secrets.token_hex(3)

    def _ip(self) -> str:
        # Contract 1.1: X-Forwarded-For from 127.0.0.1 is trusted; each check gets its own apparent IP.
        return f"198.18.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"

    def _series(self, check: str, n: int, attempt) -> dict:
        """Run `attempt(i) -> status` n times; record each; summarise the first 429 and the rate reached."""
        first_429 = None
        t0 = time.monotonic()
        sent = 0
        for i in range(1, n + 1):
            if self.ctx.out_of_time():
                break
            status = attempt(i)
            sent = i
            self.attempts.write(t_s=self.ctx.elapsed_s(), check=check, attempt=i, status=status, limited=int(status == 429))
            if status == 429:
                first_429 = i
                break
        elapsed = max(time.monotonic() - t0, 1e-6)
        result = {"check": check, "attempts": sent, "first_429_at": first_429,
                  "limit_value": first_429 - 1 if first_429 else None, "rate_per_s": sent / elapsed,
                  "verdict": LIMITED if first_429 else ABSENT}
        self.results[check] = result
        self.limits.write(**result)
        return result

    def login_per_email(self, n: int) -> None:
        users = UserClient(self.ctx.target.http(forwarded_for=self._ip()))
        email = f"probe-{self.tag}@example.invalid"
        statuses = {LoginOutcome.ACCEPTED: 303, LoginOutcome.REJECTED: 403, LoginOutcome.RATE_LIMITED: 429}
        self._series("login_per_email", n, lambda i: statuses[users.login(email, f"wrong-{i}")])

    def admin_login(self, n: int) -> None:
        admin = AdminClient(self.ctx.target.http(forwarded_for=self._ip()))
        self._series("admin_login", n, lambda i: admin.login_attempt(f"wrong-{self.tag}-{i}"))

    def register(self, n: int) -> None:
        users = UserClient(self.ctx.target.http(forwarded_for=self._ip()))
        statuses = {RegisterOutcome.CREATED: 200, RegisterOutcome.REJECTED: 422, RegisterOutcome.RATE_LIMITED: 429}
        self._series("register", n, lambda i: statuses[users.register(f"probe-{self.tag}-{i}@example.invalid", "Probe", "probe-pw")])

    def join_code(self, slug: str, code: str, n: int) -> None:
        wrong = next(c * JOIN_CODE_LENGTH for c in JOIN_CODE_ALPHABET if c * JOIN_CODE_LENGTH != code)

        def attempt(listener: ListenerClient) -> int:
            try:
                listener.open_page(slug, wrong)
            except RateLimited:
                return 429
            except AuthRejected as exc:
                return exc.status  # contract 6.1: the join form with 200 (counted as a failure for the IP)
            return 200

        first = ListenerClient(self.ctx.target.http(forwarded_for=self._ip()))
        result = self._series("join_code_per_ip", n, lambda i: attempt(first))
        if result["verdict"] != LIMITED:
            return
        # Contract 10 / 1.1: the limiter keys on the client IP, which X-Forwarded-For chooses.
        other = ListenerClient(self.ctx.target.http(forwarded_for=self._ip()))
        status = attempt(other)
        self.attempts.write(t_s=self.ctx.elapsed_s(), check="join_code_xff", attempt=1, status=status, limited=int(status == 429))
        bypass = {"check": "join_code_xff", "attempts": 1, "first_429_at": 1 if status == 429 else None, "limit_value": None,
                  "rate_per_s": None, "verdict": NOT_BYPASSED if status == 429 else BYPASSED}
        self.results["join_code_xff"] = bypass
        self.limits.write(**bypass)

    def csrf_admin_form(self) -> None:
        """Contract 3.9: an admin form POST carrying a foreign Origin/Referer and the admin cookie."""
        headers = {"Origin": CROSS_SITE_ORIGIN, "Referer": f"{CROSS_SITE_ORIGIN}/lure"}
        admin = AdminClient(self.ctx.target.http(headers=headers))
        admin.login(self.ctx.target.admin_password)
        slug = f"probe-csrf-{self.tag}"
        status = 303
        try:
            event_id = admin.create_event_wizard("Probe CSRF", slug)
        except AuthRejected as exc:
            status, event_id = exc.status, None
        accepted = event_id is not None
        if accepted:
            admin.delete_event(event_id)  # also a cross-origin form post
        self.attempts.write(t_s=self.ctx.elapsed_s(), check="csrf_admin_form", attempt=1, status=status, limited=0)
        result = {"check": "csrf_admin_form", "attempts": 1, "first_429_at": None, "limit_value": None, "rate_per_s": None,
                  "verdict": ACCEPTED if accepted else REFUSED}
        self.results["csrf_admin_form"] = result
        self.limits.write(**result)

    def finding(self, probe: SecurityProbe) -> Finding:
        r = self.results
        login = r.get("login_per_email", {})
        present = [c for c in ("login_per_email", "join_code_per_ip") if r.get(c, {}).get("verdict") == LIMITED]
        absent = [c for c in ("login_per_email", "admin_login", "register", "join_code_per_ip") if r.get(c, {}).get("verdict") == ABSENT]
        csrf = r.get("csrf_admin_form", {}).get("verdict") == ACCEPTED
        xff = r.get("join_code_xff", {}).get("verdict") == BYPASSED

        def describe(check: str) -> str:
            x = r[check]
            if x["verdict"] == LIMITED:
                return f"{LABELS[check]} (429 after {x['limit_value']} attempts)"
            return f"{LABELS[check]} ({x['attempts']} attempts at {x['rate_per_s']:.0f}/s, never a 429)"

        evidence = [describe(c) for c in ("login_per_email", "admin_login", "register", "join_code_per_ip") if c in r]
        if "join_code_xff" in r:
            evidence.append("join code limiter " + ("bypassed by a new X-Forwarded-For" if xff else "held against a new X-Forwarded-For"))
        if "csrf_admin_form" in r:
            evidence.append(f"admin form POST with Origin {CROSS_SITE_ORIGIN}: " + ("accepted (event created and deleted)" if csrf else "refused"))
        parts = []
        if present:
            parts.append("Configured limits held: " + "; ".join(describe(c) for c in present) + ".")
        if absent:
            parts.append("No limit stopped " + ", ".join(describe(c) for c in absent)
                         + ", so a password or account-creation brute force runs at whatever rate the server answers.")
        if xff:
            parts.append("The join-code limiter counts per client IP and this target trusts X-Forwarded-For, so a guesser that "
                         "changes the header gets a fresh allowance each time.")
        if csrf:
            parts.append("An admin form posted with a foreign Origin was accepted: there is no CSRF check, only the cookie's "
                         "SameSite=lax stands between a logged-in admin and a forged form.")
        critical = "admin_login" in absent or csrf
        return Finding(
            probe=probe.name,
            title="Brute-force limiters and cross-site form protection",
            limit=Limit("/login attempts per email (sliding hour)", login.get("limit_value"), "attempts"),
            configured=probe.configured(self.ctx.target),
            method="bounded series per surface until the first 429 (or the attempt budget); one cross-origin admin form post",
            knee=None,
            symptom="429 where a limiter exists; elsewhere every wrong password gets a normal 403 at full speed",
            trigger="POST /login, POST /admin/login, POST /register, GET /listener/{slug}?code=<wrong>, POST /admin/setup with a foreign Origin",
            evidence=evidence,
            paragraph=" ".join(parts) or "No checks ran within the time budget.",
            severity=Severity.CRITICAL if critical else (Severity.WARNING if absent or xff else Severity.INFO),
            recommendation=("Put /admin/login and /register behind a limiter (per IP and per account), do not trust "
                            "X-Forwarded-For except from your own proxy, and add CSRF tokens or an Origin check to admin forms."),
            data=[
                DataFile("limits.csv", "one row per check: where the limiter answered 429, or that it never did", LIMIT_COLUMNS,
                         Plot(x="check", y=("attempts", "limit_value"), series=None, kind=PlotKind.BAR)),
                DataFile("attempts.csv", "every request with its status", ATTEMPT_COLUMNS,
                         Plot(x="attempt", y=("status",), series="check", kind=PlotKind.SCATTER)),
            ],
        )
