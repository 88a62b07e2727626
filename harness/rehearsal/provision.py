"""Provisioning and teardown of a scenario's event shape on the target, before and after load.

Owns: the per-run namespaced slug, creating rooms/booths/invites/join code through the admin forms (works in
both auth modes) or the JSON shortcut (open mode only, contract 4.2), enabling transcription on the
scenario's transcribed booths, and deleting what the run created. Invite tokens are single use (contract
3.4), so one is made per interpreter plus spares for reconnects.
"""

from __future__ import annotations

import dataclasses
import logging

from ..clients.admin import AdminClient
from ..clients.booth_api import BoothApi
from ..clients.errors import ClientError
from ..clients.identifiers import BoothRef
from ..contract.languages import slugify
from ..errors import VoxloadError
from ..scenario.model import Provisioning, Scenario

logger = logging.getLogger(__name__)

SPARE_INVITES_PER_BOOTH = 2


class ProvisioningError(VoxloadError, RuntimeError):
    """The target refused the event shape (one line, names the step and URL)."""


@dataclasses.dataclass
class ProvisionedBooth:
    ref: str  # scenario booth ref "ROOM/LANG"
    room_name: str
    language: str
    room_id: int
    booth_db_id: int | None  # None with the JSON shortcut (it does not return it)
    interpreters: int
    listeners: int
    transcribed: bool
    invites: list[str]
    booth: BoothRef

    @property
    def booth_id(self) -> str:
        return self.booth.booth_id


@dataclasses.dataclass
class ProvisionedEvent:
    slug: str
    event_id: int
    join_code: str
    booths: dict[str, ProvisionedBooth]

    def to_wire(self) -> dict:
        """Everything a distributed worker needs, invites and join code included (a Locust message, never a file)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_wire(cls, data: dict) -> ProvisionedEvent:
        booths = {ref: ProvisionedBooth(**{**b, "booth": BoothRef(**b["booth"])}) for ref, b in data["booths"].items()}
        return cls(data["slug"], data["event_id"], data["join_code"], booths)

    def as_dict(self) -> dict:
        """What event.json keeps: ids, no invites or join code."""
        return {
            "slug": self.slug,
            "event_id": self.event_id,
            "booths": {ref: {"booth_id": b.booth_id, "room_id": b.room_id, "transcribed": b.transcribed} for ref, b in self.booths.items()},
        }


def run_slug(scenario_name: str, run_id: str) -> str:
    """A valid event slug (contract 2), unique per run so runs never collide."""
    return slugify(f"vl-{scenario_name}-{run_id}")


def provision(scenario: Scenario, admin: AdminClient, booth_api: BoothApi, slug: str) -> ProvisionedEvent:
    try:
        if scenario.target.provisioning is Provisioning.JSON:
            event = _provision_json(scenario, admin, booth_api, slug)
        else:
            event = _provision_forms(scenario, admin, slug)
        for booth in event.booths.values():
            if booth.transcribed and booth.booth_db_id is not None:
                # Contract 4.3: with nobody active this only updates the DB; workers start when interpreters publish.
                admin.set_transcription(event.event_id, booth.room_id, booth.booth_db_id, True)
    except ClientError as exc:
        raise ProvisioningError(f"provisioning event {slug!r} failed: {exc}") from exc
    return event


def _provision_forms(scenario: Scenario, admin: AdminClient, slug: str) -> ProvisionedEvent:
    rooms = {room.name: [b.language for b in room.booths] for room in scenario.event.rooms}
    setup = admin.setup_event(f"voxload {scenario.name}", slug, rooms)
    by_name = {room.display_name: room for room in setup.rooms}
    booths: dict[str, ProvisionedBooth] = {}
    for spec in scenario.event.booths:
        room = by_name[spec.room]
        booth_db_id = room.booth_ids[spec.language]
        invites = [
            admin.create_invite(setup.event_id, room.room_id, booth_db_id, label=f"voxload-{spec.language}-{i}")
            for i in range(spec.interpreters + SPARE_INVITES_PER_BOOTH)
        ]
        booths[spec.ref] = ProvisionedBooth(
            spec.ref, spec.room, spec.language, room.room_id, booth_db_id, spec.interpreters, spec.listeners,
            spec.transcribed, invites, BoothRef(slug, room.room_id, spec.language, room_scoped=setup.room_scoped),
        )
    return ProvisionedEvent(slug, setup.event_id, setup.join_code, booths)


def _provision_json(scenario: Scenario, admin: AdminClient, booth_api: BoothApi, slug: str) -> ProvisionedEvent:
    """Contract 4.2: each call creates (or reuses) the booth and returns a new single-use invite."""
    event_id = admin.create_event_wizard(f"voxload {scenario.name}", slug)
    booths: dict[str, ProvisionedBooth] = {}
    for room in scenario.event.rooms:
        # The shortcut renames rooms it is given an id for, so rooms are created through the form first.
        room_id = admin.add_room_wizard(event_id, room.name)
        for spec in room.booths:
            created = [booth_api.create_booth(slug, spec.language, room_id=room_id)
                       for _ in range(spec.interpreters + SPARE_INVITES_PER_BOOTH)]
            booth_db_id = admin.booth_id(event_id, room_id, spec.language)
            # Contract 15: the layout is the server's, read from the booth id it answered with.
            ref = BoothRef(slug, room_id, spec.language).with_layout_of(created[0].state.booth_id)
            booths[spec.ref] = ProvisionedBooth(
                spec.ref, spec.room, spec.language, room_id, booth_db_id, spec.interpreters, spec.listeners,
                spec.transcribed, [c.invite_token for c in created], ref,
            )
    return ProvisionedEvent(slug, event_id, admin.join_code(event_id), booths)


def teardown(event: ProvisionedEvent, admin: AdminClient, booth_api: BoothApi) -> list[str]:
    """Stop transcription (frees worker slots, which nothing else frees: contract 7.1) and delete the event.

    Returns the problems met, one line each; teardown goes on after a failed step.
    """
    problems = []
    for booth in event.booths.values():
        if booth.transcribed:
            try:
                booth_api.with_layout(booth.booth.room_scoped).transcription_stop(event.slug, booth.room_id, booth.language)
            except ClientError as exc:
                problems.append(f"transcription stop for {booth.booth_id}: {exc}")
    try:
        admin.delete_event(event.event_id)
    except ClientError as exc:
        problems.append(f"deleting event {event.slug}: {exc}")
    return problems
