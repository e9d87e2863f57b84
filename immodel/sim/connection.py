"""A client's connection to an access node: the stream both ends share.

One :class:`Connection` object stands for one TCP (or QUIC) connection. The client holds
it while it believes it is connected; the access node holds it in its table while it
serves it. Each end checks identity (``client.conn is conn``) before acting on a frame,
so a frame of a connection that one end has given up on is ignored there — that is how
a broken connection loses what was in flight on it.

Lifecycle: opened by a successful handshake and login (or at t = 0 for users online at
the start); ``broken`` when the transport gives up or a break fault hits it (nothing more
gets through); forgotten by each end separately — the client when it notices (at once
for a reset, at its next heartbeat for silence), the access node when it closes it,
crashes, or finds it silent for the liveness timeout. The RTT estimator and the in-order
clearing times are per direction (the client's sender measures the uplink, the access
node's sender the downlink).
"""

from __future__ import annotations

from immodel.sim.network_constants import INITIAL_RTO_S


class Connection:
    """One stream between a client and an access node (see the module docstring)."""

    __slots__ = (
        "access",
        "broken",
        "clear_down",
        "clear_up",
        "conn_id",
        "exposed",
        "mode",
        "opened_at",
        "rto_down",
        "rto_up",
        "rttvar_down",
        "rttvar_up",
        "srtt_down",
        "srtt_up",
        "uid",
    )

    def __init__(self, conn_id: int, uid: int, access: int, mode: str, now: float) -> None:
        self.conn_id = conn_id
        self.uid = uid
        self.access = access  # the access node's index
        self.mode = mode  # "push" or "poll"
        self.opened_at = now
        self.broken = False
        self.exposed = False  # plaintext, through an attacker's address: all of it is read
        self.clear_up = 0.0  # the last time a segment was handed over, each direction
        self.clear_down = 0.0
        self.srtt_up = self.srtt_down = -1.0  # no sample yet
        self.rttvar_up = self.rttvar_down = 0.0
        self.rto_up = self.rto_down = INITIAL_RTO_S
