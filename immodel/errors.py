"""Errors that are the user's to fix.

Anything raised as a :class:`UserError` reaches the command line as exit status 2 and a
single ``error: …`` line; every other exception is a bug in immodel and keeps its
traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input: an unknown key, a value out of range, a missing file.

    The message names the key (or file) and what is allowed, in one line.
    """


class ConfigError(UserError):
    """A scenario or sweep file that does not validate."""


class DrainWarning(UserWarning):
    """An explicit ``drain_s`` shorter than the scenario needs
    (:func:`immodel.sim.faults.required_drain_s`): ``lost`` and the latency tail then
    depend on where the run was cut off. The command line prints it as one
    ``warning:`` line."""
