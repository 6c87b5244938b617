"""Terminal output of every command: rich on a terminal, plain unwrapped lines when piped or logged.

Rich assumes 80 columns when stdout is not a terminal and folds longer lines, which breaks ``grep`` and log
shippers; off a terminal :func:`make_console` lets lines run their full length and drops colour codes.
"""

from __future__ import annotations

import sys
from typing import IO

from rich.console import Console

WIDE = 512


def make_console(file: IO[str] | None = None, *, stderr: bool = False) -> Console:
    """A console that wraps only on a terminal (its width); elsewhere no wrapping and no colour."""
    stream = file if file is not None else (sys.stderr if stderr else sys.stdout)
    if stream.isatty():
        return Console(file=file, stderr=stderr)
    return Console(file=file, stderr=stderr, width=WIDE, soft_wrap=True, no_color=True, highlight=False)
