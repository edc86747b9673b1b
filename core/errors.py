"""Errors users can act on. The CLI prints them as one line and exits non-zero."""

from __future__ import annotations


class ClustergridError(Exception):
    """A problem the user can fix; ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class SpecError(ClustergridError):
    """An experiment file that cannot run: missing, malformed, or naming unknown things."""

    exit_code = 2


class PluginError(ClustergridError):
    """A plugin name that is unknown, ambiguous, or failed to load."""

    exit_code = 2


class Interrupted(ClustergridError):
    """Ctrl-C (or SIGTERM) during a run, after everything complete was kept; the message
    says what was."""

    exit_code = 130


#: things named in one message before "and N more"
MAX_LISTED = 10


def listing(things, limit: int = MAX_LISTED, separator: str = ", ") -> str:
    """The first ``limit`` of ``things`` joined, then "and N more": a message that names
    what a file or a store holds must stay one readable line however much it holds."""
    things = [str(thing) for thing in things]
    shown = separator.join(things[:limit])
    more = len(things) - limit
    return f"{shown}{separator}and {more} more" if more > 0 else shown
