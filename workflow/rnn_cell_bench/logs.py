"""Send a job's output, Python's and TensorFlow's native logging alike, to its log file."""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
from pathlib import Path

HEADER = "=== attempt"


def redirect_output(path: str | os.PathLike, finished_marker: str | None = None) -> int:
    """Point file descriptors 1 and 2, and ``sys.stdout``/``sys.stderr``, at ``path``; returns
    the attempt number written in the log's header line.

    Re-pointing the descriptors (not only the Python objects) also captures what native
    libraries such as TensorFlow write, and a traceback if the script fails. With a
    ``finished_marker``, a log whose last attempt never printed it (the job was killed, failed
    or is being retried) is appended to, so the reason for a retry stays readable; otherwise
    the log starts afresh.
    """
    path = Path(path)
    previous = path.read_text(errors="replace") if path.exists() else ""
    last_attempt = previous.rsplit(HEADER, 1)[-1]
    unfinished = previous.strip() and finished_marker and finished_marker not in last_attempt
    attempt = previous.count(HEADER) + 1 if unfinished else 1
    log = open(path, "a" if unfinished else "w", buffering=1)  # noqa: SIM115 - lives as long as the process
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    print(f"{HEADER} {attempt}: started {started} on {platform.node()}, pid {os.getpid()} ===")
    return attempt
