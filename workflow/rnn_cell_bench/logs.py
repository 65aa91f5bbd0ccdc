"""Send a job's output, Python's and TensorFlow's native logging alike, to its log file."""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path

HEADER = "=== attempt"


def redirect_output(path: str | os.PathLike, keep_unfinished: bool = False) -> Callable[[], None]:
    """Point file descriptors 1 and 2, and ``sys.stdout``/``sys.stderr``, at ``path``.

    Re-pointing the descriptors (not only the Python objects) also captures what native
    libraries such as TensorFlow write, and a traceback if the script fails. Each attempt
    starts with a header line.

    With ``keep_unfinished``, the log of an attempt that did not finish (killed, failed, or
    stopped by SIGTERM to be retried) is kept and comes first in the next attempt's log, so
    the reason for a retry stays readable. Snakemake deletes a job's log before it runs the
    job again, so the log also has a hidden hard link beside it, ``.<name>.unfinished``, which
    survives that and even a SIGKILL; the returned function, called once the job has written
    its outputs, removes the link.
    """
    path = Path(path)
    unfinished = path.with_name(f".{path.name}.unfinished")
    previous = ""
    if keep_unfinished and unfinished.exists():
        previous = unfinished.read_text(errors="replace")
    log = open(path, "w", buffering=1)  # noqa: SIM115 - lives as long as the process
    log.write(previous)
    if keep_unfinished:
        unfinished.unlink(missing_ok=True)
        os.link(path, unfinished)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    attempt = previous.count(HEADER) + 1
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    print(f"{HEADER} {attempt}: started {started} on {platform.node()}, pid {os.getpid()} ===")
    return lambda: unfinished.unlink(missing_ok=True)
