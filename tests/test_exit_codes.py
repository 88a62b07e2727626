"""One ExitCode: README, `voxload rehearse --help`, summary.json, verdict wording and JUnit say the same."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from harness.errors import EXIT_CODE_MEANINGS, ExitCode, exit_codes_help
from harness.report.render import VERDICT_WORDS
from harness.results.run_folder import SUMMARY_SCHEMA, Verdict, exit_code_meaning, verdict_for

REPO = Path(__file__).resolve().parents[1]


def test_readme_table_states_every_exit_code_as_the_code_does():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Exit codes"):]
    section = section[: section.index("\n## ", 5)]
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", section, re.M))
    assert {int(code) for code in rows} == {int(code) for code in ExitCode}
    for code, meaning in EXIT_CODE_MEANINGS.items():
        assert rows[str(int(code))].startswith(meaning), (code, rows[str(int(code))])


def test_rehearse_help_lists_the_exit_codes(tmp_path):
    out = subprocess.run([sys.executable, "-m", "harness", "rehearse", "--help"], capture_output=True, text=True, cwd=tmp_path,
                         timeout=60, check=True).stdout
    assert exit_codes_help() in out


def test_each_exit_code_has_one_verdict_word_and_meaning():
    assert set(SUMMARY_SCHEMA["properties"]["exit_code"]["enum"]) == {int(c) for c in ExitCode}
    assert [verdict_for(c) for c in ExitCode] == [Verdict.PASSED, Verdict.SLO_FAILED, Verdict.ERROR, Verdict.INVALID, Verdict.INTERRUPTED]
    for code in ExitCode:
        assert exit_code_meaning(code) == EXIT_CODE_MEANINGS[code]
        # The report's banner says the same words after its verdict.
        assert EXIT_CODE_MEANINGS[code] in VERDICT_WORDS[verdict_for(code).value]
