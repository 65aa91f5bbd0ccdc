"""Send a job's output, Python's and TensorFlow's native logging alike, to its log file."""

from __future__ import annotations

import os
import sys


def redirect_output(path: str | os.PathLike) -> None:
    """Point file descriptors 1 and 2, and ``sys.stdout``/``sys.stderr``, at ``path``.

    Re-pointing the descriptors (not only the Python objects) also captures what native
    libraries such as TensorFlow write, and a traceback if the script fails.
    """
    log = open(path, "w", buffering=1)  # noqa: SIM115 - lives as long as the process
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
