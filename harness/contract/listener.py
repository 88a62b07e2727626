"""What VoxBento's listener page does on its own timer (contract 6.2), so simulated listeners match it."""

from __future__ import annotations

# Contract 6.2 step 4: `static/js/listener-event.js` polls the room's audio delay every 3000 ms while a source
# is selected (same access rule and limiter as the page).
AUDIO_DELAY_POLL_S = 3.0
