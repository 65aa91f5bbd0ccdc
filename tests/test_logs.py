"""Job logs: an unfinished attempt's log is kept when the job runs again."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO

ATTEMPT = f"""
import sys
sys.path.insert(0, {str(REPO / "workflow")!r})
from rnn_cell_bench.logs import redirect_output
finished = redirect_output(sys.argv[1], keep_unfinished=True)
print("working on", sys.argv[2])
if sys.argv[2] == "finish":
    finished()
elif sys.argv[2] == "crash":
    raise RuntimeError("the reason for the retry")
"""


def attempt(log, how: str, script: str = ATTEMPT) -> None:
    log.unlink(missing_ok=True)  # what Snakemake does before it runs a job again
    subprocess.run([sys.executable, "-c", script, str(log), how], check=False)


def test_unfinished_attempts_stay_in_the_log_until_one_finishes(tmp_path):
    log = tmp_path / "seed_0.log"
    attempt(log, "crash")
    attempt(log, "sigterm")
    attempt(log, "finish")
    text = log.read_text()
    assert text.count("=== attempt") == 3
    assert text.index("=== attempt 1") < text.index("the reason for the retry")
    assert text.index("the reason for the retry") < text.index("=== attempt 2")
    assert text.index("working on sigterm") < text.index("=== attempt 3")
    assert not (tmp_path / ".seed_0.log.unfinished").exists()
    # After a finished attempt, a rerun starts a fresh log.
    attempt(log, "finish")
    assert log.read_text().count("=== attempt") == 1
    assert "crash" not in log.read_text()


def test_a_sigkilled_attempt_is_kept(tmp_path):
    log = tmp_path / "seed_0.log"
    killed = ATTEMPT + "\nimport os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"
    attempt(log, "killed", killed)
    attempt(log, "finish")
    text = log.read_text()
    assert "working on killed" in text and "=== attempt 2" in text
