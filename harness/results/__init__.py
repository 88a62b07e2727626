"""Results: what a run leaves on disk and how it is judged, with no knowledge of Locust or of the target.

- ``run_folder``: the run folder (run.json, events.jsonl, samples/, summary.json), streaming sample writers,
  verdicts and their exit codes.
- ``slo``: the one metric registry, threshold parsing, three-state verdicts and the coverage rule.
- ``measures``: run-folder samples -> metric arrays for ``slo.evaluate``.
- ``junit``: summary -> JUnit XML. ``browser_files``: the browser canaries' files in the run folder.
"""
