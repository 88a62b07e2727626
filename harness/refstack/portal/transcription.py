"""Transcription workers: registry, worker loop, cap, and the start/stop API routes (contract 7).

Owns :class:`WorkerRegistry` (``app.state.workers``), :class:`TranscriptionWorker` and the two routes
``POST /api/events/{slug}/rooms/{room_id}/booths/{lang}/transcription/start|stop``.

Reproduced on purpose (contract 7.1, 7.2, 14.2, 14.3):

- the cap (``REFSTACK_MAX_TOTAL_WORKERS``, VoxBento's hard-coded 10) is checked under one asyncio lock only
  when the booth id has no entry, and counts EVERY entry, dead ones included;
- nothing stops a worker when its interpreter disconnects; a worker whose task died stays registered as
  ``STOPPED`` and keeps its slot until a start or stop for the same booth id;
- each loop iteration enqueues the ``booth.transcription.started`` webhook (one DB session), runs the audio
  provider until it ends, waits 1 s and repeats; with no provider or no audio that is about one iteration
  (and one DB session) per second, forever, like VoxBento respawning a failing ffmpeg.

The provider stands in for ffmpeg + speech recognition: ``async def transcribe(whep_url, *, language) ->
AsyncIterator[str]`` yielding one text chunk per ~3 s of audio ('' for silence). It is looked up by ``module:function`` from
``Settings.caption_provider`` (knob ``REFSTACK_CAPTION_PROVIDER``, default the media engineer's
``captioner.transcribe``) when a worker first runs, so the portal imports no media stack until then.

Version differences (``REFSTACK_VOXBENTO_DATE``, contract 15): before d2bee53 (2026-08-14) the routes are
``/api/events/{slug}/booths/{lang}/transcription/start|stop``; before 55d9740/30f96e1 (2026-06-08) the cap
counts external-API workers only and the start route does not map it to 429.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import importlib
import logging
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from . import timeline, webhooks
from ...contract import languages, routes
from .captions import CaptionAggregator, FinalCaption, settings_changed_message
from .models import Booth, Event, TranscriptSegment, TranslationLanguage
from .routes_booth_api import MULTIROOM_ROUTE, SINGLE_ROOM_ROUTE, require_access

log = logging.getLogger(__name__)

# Contract 7.1: the worker loop waits 1 s between provider (ffmpeg) runs.
RESTART_DELAY_S = 1.0
# Contract 7.2: before 2026-06-08 MAX_TOTAL_WORKERS applied to workers of these (non-local) providers only.
LOCAL_PROVIDER = "local"

Provider = Callable[[str], AsyncIterator[str]]


class WorkerCapacityError(ValueError):
    """Contract 7.2: the start of a worker for a new booth id at the cap."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"System at maximum capacity ({cap} concurrent transcription booths).")
        self.cap = cap


class ProviderUnavailable(RuntimeError):
    """The configured provider cannot be imported: the worker loops on, as VoxBento does when ffmpeg fails."""


class InvalidLanguageError(ValueError):
    """Contract 7.1: an invalid language segment on the start route ends in a 500."""


class WorkerState(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"  # the 1 s pause between provider runs
    STOPPED = "stopped"


def load_provider(spec: str) -> Provider:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ProviderUnavailable(f"provider module {module_name!r} is not importable: {exc}") from exc
    provider = getattr(module, attr or "transcribe", None)
    if provider is None:
        raise ProviderUnavailable(f"provider {spec!r} has no attribute {attr!r}")
    return provider


class TranscriptionWorker:
    def __init__(
        self, app, booth_id: str, *, event_slug: str, room_id: int | None, language_code: str, provider: str, model: str
    ) -> None:
        self._app = app
        self.booth_id = booth_id
        self.event_slug = event_slug
        self.room_id = room_id
        self.language_code = language_code
        self.provider = provider
        self.model = model
        self.state = WorkerState.STARTING
        self.iterations = 0
        self._task: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()

    def _set_state(self, new: WorkerState) -> None:
        old, self.state = self.state, new
        if old is not new:
            log.debug("worker %s %s -> %s", self.booth_id, old.value, new.value)

    @property
    def is_alive(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"transcription:{self.booth_id}")
        self._task.add_done_callback(self._on_task_done)

    def _on_task_done(self, task: asyncio.Task) -> None:
        # Contract 7.1: a dead task leaves the entry registered as STOPPED (it still counts toward the cap).
        self._set_state(WorkerState.STOPPED)
        if not task.cancelled() and task.exception() is not None:
            log.error("transcription worker %s died", self.booth_id, exc_info=task.exception())

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._set_state(WorkerState.STOPPED)

    def _whep_url(self) -> str:
        naming = self._app.state.settings.timeline.naming
        return self._app.state.media.whep_url(naming.mediamtx_path(self.event_slug, self.room_id, self.language_code))

    async def _run(self) -> None:
        spec = self._app.state.settings.caption_provider
        unavailable_logged = False
        while True:
            self.iterations += 1
            self._set_state(WorkerState.RUNNING)
            # Contract 7.1, 9.2: one DB session per loop iteration.
            await webhooks.enqueue(
                self._app,
                "booth.transcription.started",
                {"booth_id": self.booth_id, "provider": self.provider, "model": self.model},
            )
            # Contract 6.3: a new aggregator per iteration, so `seq` restarts at 1.
            aggregator = CaptionAggregator(self._send_caption, self._schedule_segment_save)
            try:
                transcribe = load_provider(spec)
                async for chunk in transcribe(self._whep_url(), language=self.language_code):
                    await aggregator.add_chunk(chunk)
            except ProviderUnavailable as exc:
                if not unavailable_logged:
                    log.warning("transcription worker %s: %s; looping without captions", self.booth_id, exc)
                    unavailable_logged = True
            except Exception:
                # VoxBento restarts the loop after provider failures (contract 7.3).
                log.exception("transcription provider failed for %s", self.booth_id)
            self._set_state(WorkerState.RESTARTING)
            await asyncio.sleep(RESTART_DELAY_S)

    async def _send_caption(self, message: dict[str, Any]) -> None:
        # Contract 7.4: awaited, so a slow caption socket slows this worker.
        await self._app.state.connections.broadcast_captions(self.booth_id, message)

    def _schedule_segment_save(self, final: FinalCaption) -> None:
        # Contract 7.4: only finals with a room id are persisted, in a background task.
        if self.room_id is None:
            return
        task = asyncio.create_task(self._save_segment(final))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _save_segment(self, final: FinalCaption) -> None:
        db = self._app.state.db
        try:
            async with db.get_session() as session:
                session.add(
                    TranscriptSegment(
                        booth_id=self.booth_id,
                        room_id=self.room_id,
                        language_code=self.language_code,
                        segment_id=final.segment_id,
                        seq=final.seq,
                        text=final.text,
                    )
                )
            # Contract 9.2: a second session looks up the booth's translation languages.
            async with db.get_session() as session:
                await session.execute(
                    select(TranslationLanguage.language_code)
                    .join(Booth, Booth.id == TranslationLanguage.booth_id)
                    .join(Event, Event.id == Booth.event_id)
                    .where(Event.slug == self.event_slug, Booth.room_id == self.room_id, Booth.language_code == self.language_code)
                )
        except Exception:
            # Contract 9.3: transcript saving catches and logs DB errors.
            log.exception("saving transcript segment failed for %s", self.booth_id)


@dataclasses.dataclass(frozen=True)
class WorkerStatistics:
    registered: int  # what the cap counts (contract 7.2), dead entries included
    alive: int
    loop_iterations: int  # each one cost a webhook-enqueue DB session (contract 9.2)


class WorkerRegistry:
    """``app.state.workers``: every transcription worker of the process (contract 7.2)."""

    def __init__(self, app) -> None:
        self._app = app
        self._workers: dict[str, TranscriptionWorker] = {}
        self._lock = asyncio.Lock()

    @property
    def cap(self) -> int:
        return self._app.state.settings.max_total_workers

    def count(self) -> int:
        return len(self._workers)

    def get(self, booth_id: str) -> TranscriptionWorker | None:
        return self._workers.get(booth_id)

    def statistics(self) -> WorkerStatistics:
        workers = list(self._workers.values())
        return WorkerStatistics(
            registered=len(workers),
            alive=sum(w.is_alive for w in workers),
            loop_iterations=sum(w.iterations for w in workers),
        )

    async def start(
        self, booth_id: str, *, event_slug: str, room_id: int | None, language_code: str, provider: str, model: str
    ) -> TranscriptionWorker:
        async with self._lock:
            existing = self._workers.get(booth_id)
            if existing is None:
                if self._app.state.settings.timeline.has(timeline.WORKER_CAP_ALL):
                    # Contract 7.2: checked only for a new booth id, counting every entry (dead ones too).
                    if len(self._workers) >= self.cap:
                        raise WorkerCapacityError(self.cap)
                elif provider != LOCAL_PROVIDER:
                    # Contract 7.2 history: before 2026-06-08 the cap counted external-API workers only.
                    external = sum(w.provider != LOCAL_PROVIDER for w in self._workers.values())
                    if external >= self.cap:
                        raise WorkerCapacityError(self.cap)
            elif existing.is_alive:
                # Contract 7.1: "started" also when a worker already runs.
                return existing
            else:
                # A STOPPED entry is replaced; the new worker starts only after the old one is stopped.
                await existing.stop()
            worker = TranscriptionWorker(
                self._app, booth_id, event_slug=event_slug, room_id=room_id, language_code=language_code, provider=provider, model=model
            )
            self._workers[booth_id] = worker
            worker.start()
            return worker

    async def stop(self, booth_id: str) -> bool:
        async with self._lock:
            worker = self._workers.pop(booth_id, None)
            if worker is not None:
                await worker.stop()
        return worker is not None

    async def push_settings_changed(self, booth_id: str) -> None:
        """Contract 4.3, 6.3: admin disabled/changed transcription on a booth with an active interpreter."""
        await self._app.state.connections.broadcast_captions(booth_id, settings_changed_message())

    async def shutdown(self) -> None:
        async with self._lock:
            workers, self._workers = list(self._workers.values()), {}
        await asyncio.gather(*(w.stop() for w in workers), return_exceptions=True)
        # The captioner's recogniser process (recogniser.py), if a worker ever started it.
        recogniser = sys.modules.get("harness.refstack.portal.recogniser")
        if recogniser is not None:
            recogniser.shutdown()


router = APIRouter()
_MULTIROOM = ("event_slug", "room_id", "language_code")
# Contract 2: before d2bee53 (2026-08-14) these routes had no /rooms/{room_id} segment.
_SINGLE_ROOM = ("event_slug", "language_code")


@router.post(routes.API_TRANSCRIPTION_START.server(*_MULTIROOM), dependencies=[MULTIROOM_ROUTE, Depends(require_access)])
async def start_transcription(event_slug: str, room_id: int, language_code: str, request: Request):
    return await _start(request, event_slug, room_id, language_code)


@router.post(routes.API_TRANSCRIPTION_START.single_room().server(*_SINGLE_ROOM), dependencies=[SINGLE_ROOM_ROUTE, Depends(require_access)])
async def start_transcription_single_room(event_slug: str, language_code: str, request: Request):
    return await _start(request, event_slug, None, language_code)


@router.post(routes.API_TRANSCRIPTION_STOP.server(*_MULTIROOM), dependencies=[MULTIROOM_ROUTE, Depends(require_access)])
async def stop_transcription(event_slug: str, room_id: int, language_code: str, request: Request):
    return await _stop(request, event_slug, room_id, language_code)


@router.post(routes.API_TRANSCRIPTION_STOP.single_room().server(*_SINGLE_ROOM), dependencies=[SINGLE_ROOM_ROUTE, Depends(require_access)])
async def stop_transcription_single_room(event_slug: str, language_code: str, request: Request):
    return await _stop(request, event_slug, None, language_code)


async def _start(request: Request, event_slug: str, room_id: int | None, language_code: str):
    if not languages.is_valid_language_code(language_code):
        # Contract 7.1 [V]: an invalid language segment ends in a 500 (an unhandled error in VoxBento).
        raise InvalidLanguageError(f"invalid language code {language_code!r}")
    settings = request.app.state.settings
    booth_id = settings.timeline.naming.booth_id(event_slug, room_id, language_code)
    query = (
        select(Booth)
        .join(Event, Event.id == Booth.event_id)
        .where(Event.slug == event_slug, Booth.language_code == language_code)
        .order_by(Booth.id)
        .limit(1)
    )
    if room_id is not None:  # before d2bee53: the event's first booth of that language
        query = query.where(Booth.room_id == room_id)
    async with request.app.state.db.get_session() as session:
        booth = (await session.scalars(query)).first()
    if booth is None or not booth.transcription_enabled:
        # VoxBento's exact body (portal/routers/api.py).
        return {"status": "disabled", "message": "Transcription is not enabled for this booth."}
    try:
        await request.app.state.workers.start(
            booth_id,
            event_slug=event_slug,
            room_id=room_id,
            language_code=language_code,
            provider=booth.transcription_provider,
            model=booth.transcription_model,
        )
    except WorkerCapacityError as exc:
        if not settings.timeline.has(timeline.WORKER_CAP_ALL):
            # Contract 7.2 history: the 429 mapping dates from 30f96e1 (2026-06-08). The contract does not say
            # what a client saw before; an unmapped ValueError reaches the generic handler, which answers
            # 500 "Internal Server Error" exactly as the admin form still does at the cap (4.3).
            raise
        # Contract 7.2: the API maps the cap to 429.
        return JSONResponse({"detail": str(exc)}, status_code=429)
    return {"status": "started", "provider": booth.transcription_provider, "model": booth.transcription_model}


async def _stop(request: Request, event_slug: str, room_id: int | None, language_code: str):
    # Contract 7.1: always 200 {"status": "stopped"}.
    naming = request.app.state.settings.timeline.naming
    await request.app.state.workers.stop(naming.booth_id(event_slug, room_id, language_code))
    return {"status": "stopped"}
