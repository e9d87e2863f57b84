"""Relationship facts: who is muted, who blacklisted whom, which pairs are friends.

The check stage of a send (article: mute, blacklist and friendship checks) looks these
up; :func:`immodel.protocol.admission.admit` decides on them. A deployment keeps them in
its relationship store; the model draws them once from the scenario
(``server.muted_fraction``, ``server.blacklist_fraction``, ``server.friend_fraction``):

* the muted users are the first draw of the run's ``admission`` stream, one uniform per
  user, below ``server.muted_fraction``;
* friendship and blacklisting are properties of a pair, not of a message: a fixed
  uniform per pair (:func:`immodel.sim.kernel.pair_uniform`, salted 1 for the unordered
  pair's friendship, 2 for "the recipient blacklisted the sender").

The simulator's logic tier and the real-sockets logic server (:mod:`immodel.real.
logic_server`) both build their facts here, so that one scenario refuses the same
messages in both. A fraction of 0 or 1 needs no draw per pair, which keeps the plain
deployment cheap.
"""

from __future__ import annotations

from typing import Any

from immodel.sim.kernel import pair_uniform


class Relationships:
    """The relationship facts of one run (built once, read per 1:1 send)."""

    __slots__ = ("blacklist_fraction", "friend_fraction", "muted", "seed")

    def __init__(self, sc: Any, admission_generator) -> None:
        """``admission_generator``: the ``numpy.random.Generator`` of the run's
        ``admission`` stream, before any other draw from it."""
        self.seed = sc["seed"]
        self.friend_fraction = sc["server.friend_fraction"]
        self.blacklist_fraction = sc["server.blacklist_fraction"]
        muted = admission_generator.random(sc["workload.users"]) < sc["server.muted_fraction"]
        self.muted = {int(u) for u in muted.nonzero()[0]}

    def pair(self, sender: int, recipient: int) -> tuple[bool, bool]:
        """``(are_friends, blacklisted_by_recipient)`` for a 1:1 send from ``sender`` to
        ``recipient`` (user ids)."""
        friends, black = True, False
        if self.friend_fraction < 1.0:
            a, b = (sender, recipient) if sender < recipient else (recipient, sender)
            friends = pair_uniform(self.seed, a, b, 1) < self.friend_fraction
        if self.blacklist_fraction > 0.0:
            black = pair_uniform(self.seed, recipient, sender, 2) < self.blacklist_fraction
        return friends, black
