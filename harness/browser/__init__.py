"""Real browsers in the rehearsal: headless Chromium canaries running the target's own pages.

Map of the package:

* ``chromium``: where the system Chromium is, whether it can run, and the one set of launch flags.
* ``page_probe.js``: injected before the target's scripts; watches RTCPeerConnections (getStats), taps each
  remote audio track's PCM with an AudioWorklet (ear-time stamped), and counts WHEP/WHIP POSTs.
* ``player.js``: the canary's own WHEP player, used only where the target's listener page cannot play
  (the reference portal's ``listener.html`` has no player code).
* ``pageaudio``: page records -> per-second figures and marker mouth-to-ear (harness/rtc/markers.py's
  detector, harness/media/schedule.py's send times). Pure numpy; knows nothing of Playwright.
* ``pagelog``: console errors, uncaught exceptions and failed requests of a page, as records and a summary.
* ``files``: the run-folder files canaries write, and reading them back.
* ``canary``: the canary process (``python -m harness.browser.canary``): Playwright's sync API, never
  imports locust or gevent; config and schedules arrive as JSON lines on stdin, results stream to disk.
* ``fleet``: the Locust-side owner that starts canary processes and feeds them (subprocess + threads only).
"""
