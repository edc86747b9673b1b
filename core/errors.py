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
