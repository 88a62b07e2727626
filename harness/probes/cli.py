"""`voxload probe NAME`: argument registration and dispatch.

Each probe is a subcommand with its own flags (``voxload probe NAME --help``) plus the common ones added
here: the target (embedded stack with ``--set KEY=VALUE`` knobs, or ``--host``), restart commands for a
real deployment, the run folder (``--results-dir``, ``--run-id``) and the time budget. Exit codes as for
every subcommand: 0 a finding was written, 2 a usage, target or harness error (one line, no traceback).
"""

from __future__ import annotations

import argparse
import logging
import math
import re
import sys
from pathlib import Path

from ..clients.errors import ClientError
from ..clients.tokens import ADMIN_PASSWORD_ENV_VAR
from ..inputs import folder_argument, run_id_argument, url_argument
from ..media.errors import MediaError
from ..errors import ExitCode, UserError
from ..results.run_folder import ResultsError, RunDirectory, RunStatus
from .registry import PROBES
from .base import Probe, ProbeContext, ProbeError
from ..results.layout import PROBES_DIR
from .finding import FindingError
from ..scenario.ramp import RampError
from ..target.targets import Target, TargetError, check_target_flags, open_target

DESCRIPTION = "Push one known VoxBento limit against the embedded reference stack or --host, and state a finding."
log = logging.getLogger(__name__)

_KNOB_KEY = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _knob(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not _KNOB_KEY.match(key):
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE with an upper-case knob name")
    return key, value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == math.inf:  # `not >` also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r}: must be a finite number of seconds > 0")
    return value


def _common_arguments(parser: argparse.ArgumentParser, probe: type[Probe]) -> None:
    target = parser.add_argument_group("target")
    target.add_argument("--host", type=url_argument, metavar="URL",
                        help=f"a VoxBento deployment you own (admin password in ${ADMIN_PASSWORD_ENV_VAR}); default: the embedded reference stack")
    target.add_argument("--set", dest="knobs", type=_knob, action="append", default=[], metavar="KEY=VALUE",
                        help="a knob of the embedded reference stack (repeatable; see `voxload stack up --help`)")
    target.add_argument("--restart-cmd", metavar="CMD", help="shell command that restarts the portal of --host (restart drills)")
    target.add_argument("--media-restart-cmd", metavar="CMD", help="shell command that restarts the media server of --host")
    results = parser.add_argument_group("results")
    results.add_argument("--results-dir", type=folder_argument, default="reports", metavar="DIR",
                         help="where run folders go (default reports)")
    results.add_argument("--run-id", type=run_id_argument, metavar="ID", help="run folder name (default: UTC time plus random suffix)")
    results.add_argument("--max-duration-s", type=_positive_seconds, default=probe.default_budget_s, metavar="SECONDS",
                         help=f"time budget; the probe stops by itself (default {probe.default_budget_s:.0f})")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    names = ", ".join(PROBES)
    sub = parser.add_subparsers(dest="probe", metavar="NAME", parser_class=type(parser), title="probes",
                                description=f"one of: {names}")
    sub.required = True
    for name, probe in PROBES.items():
        probe_parser = sub.add_parser(name, help=probe.help, description=(probe.__doc__ or probe.help).strip().splitlines()[0])
        probe.add_arguments(probe_parser)
        _common_arguments(probe_parser, probe)


def _target(args: argparse.Namespace, probe_dir: Path | None, probe: type[Probe]) -> Target:
    # The probe's own embedded knobs apply only to the embedded stack; the operator's --set is checked against --host.
    knobs = {} if args.host else {**probe.embedded_knobs, **dict(args.knobs)}
    return open_target(args.host, data_dir=(probe_dir or Path(".")) / "stack", knobs=knobs, restart_cmd=args.restart_cmd,
                       media_restart_cmd=args.media_restart_cmd, media_api_url=getattr(args, "media_api_url", None))


def run(args: argparse.Namespace) -> int:
    probe_cls = PROBES[args.probe]
    try:
        probe_cls.check_arguments(args)
    except (ValueError, RampError) as exc:
        raise UserError(str(exc)) from None
    remote: Target | None = None
    try:
        check_target_flags(args.host, dict(args.knobs), args.restart_cmd, args.media_restart_cmd)
        if args.host:
            remote = _target(args, None, probe_cls)
    except TargetError as exc:
        raise UserError(str(exc)) from None
    try:
        run_dir = RunDirectory.create(root=args.results_dir, run_id=args.run_id, target_url=args.host)
    except (ResultsError, OSError) as exc:
        if remote is not None:
            remote.close()
        raise UserError(str(exc)) from None
    probe_dir = run_dir.path / PROBES_DIR / probe_cls.name
    probe_dir.mkdir(parents=True)
    target: Target | None = remote
    ctx: ProbeContext | None = None
    try:
        if target is None:
            target = _target(args, probe_dir, probe_cls)
            run_dir.set_target_url(target.portal_url)
        ctx = ProbeContext(target, probe_dir, args, args.max_duration_s)
        finding = probe_cls().run(ctx)
        ctx.close()
        path = finding.write(probe_dir)
    except (TargetError, ProbeError, ClientError, MediaError, FindingError) as exc:
        if ctx is not None:
            ctx.close()
        run_dir.finish(RunStatus.FAILED, exit_code=ExitCode.USAGE, error=str(exc))
        raise UserError(f"probe {probe_cls.name}: {exc} (partial data in {probe_dir})") from None
    except KeyboardInterrupt:
        if ctx is not None:
            ctx.close()
        run_dir.finish(RunStatus.INTERRUPTED, exit_code=ExitCode.INTERRUPTED, error="interrupted")
        raise
    finally:
        if target is not None:
            target.close()
    run_dir.finish(RunStatus.FINISHED, exit_code=ExitCode.OK)
    print(finding.paragraph)
    print(f"finding: {path}", file=sys.stderr)
    return ExitCode.OK
