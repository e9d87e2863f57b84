"""immodel.protocol — the executable reference model of the article's delivery protocol.

Pure, sans-IO state machines (no SimPy, no randomness, no I/O, no clock of their own):
every method that depends on time takes ``now`` in seconds and returns the actions for its
caller to carry out; ``next_deadline()`` says when to call back. Read in this order:

1. :mod:`~immodel.protocol.messages` — what travels, and the actions the machines return;
2. :mod:`~immodel.protocol.sender` — unique id + retry until the server replies;
3. :mod:`~immodel.protocol.dedup` — the server remembers ids for a window, so a retry is
   answered with the original reply instead of being stored twice;
4. :mod:`~immodel.protocol.admission` — auth (UserSig), mute/blacklist/friend checks,
   callback and content screening, each with a reason code back to the sender;
5. :mod:`~immodel.protocol.ordering` — server timestamps for 1:1, per-group seq;
6. :mod:`~immodel.protocol.server` — durable store vs volatile node state, routing,
   login/disconnect, crash;
7. :mod:`~immodel.protocol.pending_ack` — keep every downlink message until ACKed,
   retransmit on timeout;
8. :mod:`~immodel.protocol.receiver` and :mod:`~immodel.protocol.sync` — ACK, client
   dedup, group seq gaps, timestamp/seq cursor sync; :mod:`~immodel.protocol.inbox` —
   the opt-in per-user inbox with one cursor (``reliability.sync_cursor = "inbox"``);
9. :mod:`~immodel.protocol.usersig` — the vendor's UserSig v2 token (HMAC-SHA256);
10. :mod:`~immodel.protocol.channel` — the channel's security decisions: TLS identity vs
    a hijacked address, a tampered frame detected or shown, frames without a session,
    content digests, the screening policy.
11. :mod:`~immodel.protocol.live` — live-broadcast rooms: the per-room rate cap with
    priorities (decided per window) and the bounded recent buffer viewers read from.
12. :mod:`~immodel.protocol.rest` — the REST API for business backends: the per-app rate
    limit per second with its retry-after, and the backend's retry decisions.
13. :mod:`~immodel.protocol.notification` — the phone vendor's per-app rate limit on
    offline notifications (a token bucket).

The simulator (:mod:`immodel.sim`) drives exactly these classes; it adds time, loss and
load, never protocol decisions of its own. So does the real-sockets harness
(:mod:`immodel.real`), with real time, processes and sockets.
"""

from immodel.protocol.dedup import DedupWindow, Verdict
from immodel.protocol.inbox import Inboxes, answer_inbox_sync
from immodel.protocol.messages import (
    Deliver,
    Message,
    SendAck,
    SendFailed,
    SendReply,
    SendSucceeded,
    Show,
    Snapshot,
    StartSync,
    Stored,
    SyncRequest,
    SyncResponse,
    Transmit,
)
from immodel.protocol.ordering import Sequencer
from immodel.protocol.pending_ack import PendingAcks
from immodel.protocol.receiver import Receiver
from immodel.protocol.sender import RetryPolicy, UplinkSender
from immodel.protocol.server import MessageStore, ServerNode
from immodel.protocol.sync import SyncReader, Timeline, answer_sync

__all__ = [
    "DedupWindow",
    "Deliver",
    "Inboxes",
    "Message",
    "MessageStore",
    "PendingAcks",
    "Receiver",
    "RetryPolicy",
    "SendAck",
    "SendFailed",
    "SendReply",
    "SendSucceeded",
    "Sequencer",
    "ServerNode",
    "Show",
    "Snapshot",
    "StartSync",
    "Stored",
    "SyncReader",
    "SyncRequest",
    "SyncResponse",
    "Timeline",
    "Transmit",
    "UplinkSender",
    "Verdict",
    "answer_inbox_sync",
    "answer_sync",
]
