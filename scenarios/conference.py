"""The locustfile: `locust -f scenarios/conference.py --headless [--scenario smoke] [--host URL]`.

Without --host it starts the embedded reference stack; with --host it drives that deployment (admin password
from $VOXLOAD_ADMIN_PASSWORD). Results go to reports/<run-id>/; the exit code is harness.errors.ExitCode: 0 every SLO
met, 1 an SLO breached, 2 usage or input error, 3 the run is not valid evidence, 130 Ctrl-C (README "Exit codes").
"""

from harness.rehearsal.plugin import ConferenceShape  # noqa: F401  (registers the CLI flags and event hooks)
from harness.rehearsal.users import AdminUser, CoordinatorUser, InterpreterUser, ListenerUser  # noqa: F401
