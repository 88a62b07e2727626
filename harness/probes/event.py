"""The probe's own event on the target: created through the admin forms, removed afterwards.

Owns :func:`provision` (one event, one room, one booth per language, invites, join code: contract
Appendix A1 through :class:`~harness.clients.admin.AdminClient`, which works in both auth modes) and
:meth:`ProbeEvent.teardown` (stop every transcription worker the probe may have started, then delete the
event: contract 4.4 says the admin delete does not stop workers, so the stop comes first).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets

from ..clients.admin import AdminClient
from ..clients.booth_api import BoothApi
from ..clients.errors import ClientError, RequestTimeout
from ..clients.identifiers import BoothRef
from ..target.targets import Target

log = logging.getLogger(__name__)

# Contract 2: two-letter ISO 639-1 codes; enough distinct ones for "past the cap" on the default cap of 10.
LANGUAGES = ("es", "fr", "de", "it", "pt", "nl", "sv", "pl", "ro", "cs", "da", "fi", "el", "hu",
             "no", "tr", "uk", "ja", "ko", "zh", "ar", "he", "hi", "id", "ms", "th", "vi", "bg", "hr", "sk")


@dataclasses.dataclass
class ProbeBooth:
    language: str
    ref: BoothRef
    db_id: int
    invites: list[str]

    @property
    def booth_id(self) -> str:
        return self.ref.booth_id


@dataclasses.dataclass
class ProbeEvent:
    admin: AdminClient
    event_id: int
    slug: str
    room_id: int
    join_code: str
    booths: list[ProbeBooth]

    @property
    def room_scoped(self) -> bool:
        """The target's booth-id layout (contract 15), as recognised when the event was provisioned."""
        return all(b.ref.room_scoped for b in self.booths)

    def booth_api(self) -> BoothApi:
        """The booth JSON API with the admin's cookie, on this target's route layout."""
        return BoothApi(self.admin.http, room_scoped=self.room_scoped)

    def teardown(self) -> list[str]:
        """Best effort; returns one line per step that failed (the probe reports them, the run goes on)."""
        problems: list[str] = []
        api = self.booth_api()
        for index, booth in enumerate(self.booths):
            try:
                api.transcription_stop(self.slug, self.room_id, booth.language)
            except RequestTimeout as exc:
                # The target serialises stops (one registry lock): after one timed out, the others would each wait
                # the full client timeout too. Teardown stays bounded; the event delete below still runs.
                skipped = len(self.booths) - index - 1
                problems.append(f"stop transcription of {booth.booth_id}: {exc}; {skipped} further stops skipped")
                break
            except ClientError as exc:
                problems.append(f"stop transcription of {booth.booth_id}: {exc}")
        try:
            self.admin.delete_event(self.event_id)
        except ClientError as exc:
            problems.append(f"delete event {self.slug}: {exc}")
        for line in problems:
            log.warning("teardown: %s", line)
        return problems


def probe_slug(probe_name: str) -> str:
    return f"probe-{probe_name}-{secrets.token_hex(3)}"


def provision(target: Target, probe_name: str, languages: int, invites_per_booth: int = 0,
              transcription: bool = False) -> ProbeEvent:
    """Create the probe's event with `languages` booths in one room."""
    if not 1 <= languages <= len(LANGUAGES):
        raise ValueError(f"{languages} booths: must be 1..{len(LANGUAGES)}")
    admin = AdminClient(target.http())
    admin.login(target.admin_password)
    slug = probe_slug(probe_name)
    langs = LANGUAGES[:languages]
    setup = admin.setup_event(f"Probe {probe_name}", slug, {"Probe room": langs})
    room = setup.rooms[0]
    booths: list[ProbeBooth] = []
    for lang in langs:
        db_id = room.booth_ids[lang]
        invites = [admin.create_invite(setup.event_id, room.room_id, db_id, f"probe-{i}") for i in range(invites_per_booth)]
        if transcription:
            # Contract 4.3: with no active interpreter this only stores the setting; nothing starts yet.
            admin.set_transcription(setup.event_id, room.room_id, db_id, enabled=True)
        booths.append(ProbeBooth(lang, BoothRef(slug, room.room_id, lang, room_scoped=setup.room_scoped), db_id, invites))
    return ProbeEvent(admin, setup.event_id, slug, room.room_id, setup.join_code, booths)
