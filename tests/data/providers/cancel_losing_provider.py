"""A caption provider (REFSTACK_CAPTION_PROVIDER=cancel_losing_provider:transcribe) that loses cancellation.

It behaves as the stand-in captioner did on Python 3.11 when `transcription/stop` cancelled it just as
``asyncio.wait_for(track.recv(), ...)`` completed (gh-86296): the cancel is swallowed and the worker runs on, so
the stop that awaits it never returns and holds the portal's worker registry lock. A repeatable fault for tests.
When ``$CANCEL_LOSING_PROVIDER_READY`` names a file, it is created once the provider is running.
"""

import asyncio
import os
from pathlib import Path


async def transcribe(whep_url: str, language: str | None = None):
    ready = os.environ.get("CANCEL_LOSING_PROVIDER_READY")
    if ready:
        Path(ready).touch()
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            continue  # what the lost cancel amounts to
        yield ""
