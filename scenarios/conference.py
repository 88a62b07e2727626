"""The locustfile: `locust -f scenarios/conference.py --headless [--scenario smoke] [--host URL]`.

Without --host it starts the embedded reference stack; with --host it drives that deployment (admin password
from $VOXLOAD_ADMIN_PASSWORD). Results go to reports/<run-id>/; the process exits 0 (SLOs met), 1 (breached)
or 2 (harness/input error, saturated generator).
"""

from harness.locust_plugin import ConferenceShape  # noqa: F401  (registers the CLI flags and event hooks)
from harness.users import AdminUser, CoordinatorUser, InterpreterUser, ListenerUser  # noqa: F401
