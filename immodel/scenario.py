"""Scenarios: what one simulation run studies.

A scenario is a flat mapping of dotted keys (``network.downlink_loss``) to validated
values. It is read from a TOML file (sections become the prefixes), from the name of a
built-in scenario (``immodel scenarios`` lists them), or from a Python mapping, and
``--set KEY=VALUE`` overrides use the same dotted names. Every key has a default that
describes a plain deployment, so a file only states what it studies:
every user online, no churn, no faults, every reliability mechanism on, the optional
server stages off.

Validation is strict because sweeps run for hours: an unknown key is rejected with the
closest valid name, a value out of range names the key and the allowed range, and the
error is a :class:`~immodel.errors.ConfigError` (exit status 2 on the command line).

:data:`SCHEMA` is the single table of keys; the resolved scenario can be written back
as TOML (``scenario.toml`` beside a run's records) and re-read to the same values.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import tomli_w

from immodel.errors import ConfigError

TRANSPORTS = ("short_poll", "long_poll", "push", "hybrid")
SERVICE_DISTS = ("exponential", "constant", "lognormal")
POLL_SCHEDULES = ("fixed_rate", "fixed_delay")
DIFFUSIONS = ("write", "read")
LATENCY_DISTS = ("constant", "lognormal", "exponential", "empirical")
NETWORK_MODELS = ("stream", "datagram")
DNS_MODES = ("none", "local", "httpdns")
CHANNELS = ("encrypted", "plaintext")
SCREENING_POLICIES = ("block", "flag", "replace", "sender_only")
OFFLINE_PUSH_DISTS = ("constant", "exponential")
LOGIN_CATCHUPS = ("queue_and_sync", "one_transfer")
DEVICE_TRANSPORTS = ("push", "long_poll", "short_poll")
IDLE_POLL_MODES = ("exact", "aggregated")  # transport.idle_poll_mode (immodel.sim.idle_poll)
#: The ``drain_s`` value that asks for the drain the scenario needs (see :meth:`Scenario.resolved`).
AUTO = "auto"


@dataclass(frozen=True)
class Key:
    """One scenario key: its default, its type and what values are allowed."""

    name: str
    default: Any
    # "int", "float", "bool", "str", "choice", "latency", "faults", "drain", "shares",
    # "distribution" (a number or a distribution table, like latency but without a unit),
    # "times" (a list of instants in seconds)
    kind: str
    doc: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    choices: tuple[str, ...] = ()

    def allowed(self) -> str:
        """What values the key accepts, as a phrase for error messages and ``immodel keys``."""
        if self.kind == "drain":
            return "'auto' or a number ≥ 0"
        if self.kind == "latency":
            return "a number ≥ 0 (ms) or a table with dist = one of " + ", ".join(LATENCY_DISTS)
        if self.kind == "devices":
            return (
                "a table of device kinds, each {share = a number in [0, 1], transport = one "
                "of " + ", ".join(DEVICE_TRANSPORTS) + "}; the first kind has share = 1.0"
            )
        if self.kind == "faults":
            return "a list of fault tables with kind = one of " + ", ".join(FAULT_KINDS)
        if self.kind == "times":
            return "a list of times in seconds ≥ 0"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "distribution":
            return "a number ≥ 0 or a table with dist = one of " + ", ".join(LATENCY_DISTS)
        if self.kind == "shares":
            return "a table of shares ≥ 0 with a positive sum, keys " + ", ".join(self.choices)
        if self.kind == "bool":
            return "true or false"
        if self.lo is not None or self.hi is not None:
            lo = "-inf" if self.lo is None else f"{self.lo:g}"
            hi = "inf" if self.hi is None else f"{self.hi:g}"
            bracket = "(" if self.lo_open else "["
            close = "]" if self.hi is not None else ")"
            noun = "an integer" if self.kind == "int" else "a number"
            return f"{noun} in {bracket}{lo}, {hi}{close}"
        return {"int": "an integer", "float": "a number", "str": "a string"}.get(self.kind, "")


def _k(name, default, kind, doc, **kw) -> Key:
    return Key(name, default, kind, doc, **kw)


def _ms(name, default, doc) -> Key:
    return _k(name, default, "float", doc, lo=0.0)


# The single table of scenario keys. Units are in the names.
SCHEMA: tuple[Key, ...] = (
    _k("name", "custom", "str", "a short name for the scenario"),
    _k("description", "", "str", "one line on what the scenario studies"),
    _k("seed", 1, "int", "root seed of the run's SeedSequence", lo=0),
    _k("duration_s", 60.0, "float", "sending period (s)", lo=0.0, lo_open=True),
    _k(
        "drain_s",
        AUTO,
        "drain",
        "time after the sending period for delivery and recovery (s), or 'auto': the drain "
        "every repair needs (immodel.sim.faults.required_drain_s), resolved before the run; "
        "a message not delivered by the end of the drain counts as lost",
        lo=0.0,
    ),
    _k("sample_interval_s", 1.0, "float", "period of the load samples (s)", lo=0.0, lo_open=True),
    # --- workload -------------------------------------------------------------------------
    _k(
        "workload.users",
        1000,
        "int",
        "number of users (one device each unless workload.devices)",
        lo=2,
    ),
    _k(
        "workload.send_rate_per_user",
        0.01,
        "float",
        "messages per second sent by each online user (Poisson)",
        lo=0.0,
    ),
    _k("workload.group_share", 0.0, "float", "fraction of messages sent to groups", lo=0.0, hi=1.0),
    _k("workload.groups", 10, "int", "number of groups", lo=0),
    _k("workload.group_size", 20, "int", "members per group (sender included)", lo=2),
    _k(
        "workload.contacts",
        0,
        "int",
        "1:1 contacts per user (0: any other user, uniformly at random)",
        lo=0,
    ),
    _k("workload.payload_bytes", 200, "int", "message body size (bytes)", lo=0),
    _k(
        "workload.online_fraction",
        1.0,
        "float",
        "share of users connected at the start",
        lo=0.0,
        hi=1.0,
    ),
    _k(
        "workload.mean_online_s",
        0.0,
        "float",
        "mean length of an online period with churn (s; 0: no churn)",
        lo=0.0,
    ),
    _k(
        "workload.mean_offline_s",
        0.0,
        "float",
        "mean length of an offline period with churn (s; 0: no churn)",
        lo=0.0,
    ),
    # --- devices and offline push (immodel.sim.devices, immodel.sim.offline_push) ----------
    _k(
        "workload.devices",
        {},
        "devices",
        "device kinds per user: a table {kind = {share = …, transport = …}} (share of users "
        "who have the kind; the first kind is everyone's and needs share = 1.0); each device "
        "has its own connection, presence, cursors and dedup; {} (default): one phone per "
        "user on transport.kind",
    ),
    _k(
        "workload.push_open_prob",
        0.0,
        "float",
        "probability that an offline device's user opens the app when a notification "
        "arrives (then it logs in and catches up; 0: notifications change nothing)",
        lo=0.0,
        hi=1.0,
    ),
    _k(
        "workload.push_open_delay_s",
        30.0,
        "float",
        "mean delay from a notification to opening the app (s, exponential)",
        lo=0.0,
    ),
    # --- network ---------------------------------------------------------------------------
    _k(
        "network.latency_ms",
        40.0,
        "latency",
        "one-way latency: a number (constant) or a table {dist = 'lognormal', median = 40, "
        "p99 = 300} / {dist = 'exponential', mean = 40} / {dist = 'empirical', samples = [...]}",
    ),
    _k("network.uplink_loss", 0.0, "float", "packet loss client → server", lo=0.0, hi=1.0),
    _k("network.downlink_loss", 0.0, "float", "packet loss server → client", lo=0.0, hi=1.0),
    _k(
        "network.burst_enter_prob",
        0.0,
        "float",
        "Gilbert–Elliott: per-packet probability of entering the bad state (0: no bursts)",
        lo=0.0,
        hi=1.0,
    ),
    _k(
        "network.burst_exit_prob",
        0.3,
        "float",
        "Gilbert–Elliott: per-packet probability of leaving the bad state",
        lo=0.0,
        hi=1.0,
        lo_open=True,
    ),
    _k(
        "network.burst_loss", 0.5, "float", "Gilbert–Elliott: loss in the bad state", lo=0.0, hi=1.0
    ),
    _k("network.header_bytes", 60, "int", "bytes of framing per packet (TCP/TLS/protocol)", lo=0),
    _k(
        "network.model",
        "stream",
        "choice",
        "stream: each connection delivers in order and the transport resends a lost segment "
        "after an RTO (loss becomes delay; data is lost only when a connection breaks); "
        "datagram: loss and latency per application packet, no transport underneath",
        choices=NETWORK_MODELS,
    ),
    _ms(
        "network.rto_min_ms",
        200.0,
        "stream: floor of the retransmission timeout (RFC 6298 says 1 s; Linux uses 200 ms)",
    ),
    _k(
        "network.rto_max_ms",
        60000.0,
        "float",
        "stream: ceiling of the retransmission timeout, doubling included (ms)",
        lo=0.0,
        lo_open=True,
    ),
    _k(
        "network.break_rate_per_hour",
        0.0,
        "float",
        "stream: silent breaks per connection per hour (NAT rebinding, network handover): "
        "in-flight data is lost, the client notices at its next heartbeat or request",
        lo=0.0,
    ),
    # --- transport -------------------------------------------------------------------------
    _k("transport.kind", "push", "choice", "how messages get down to clients", choices=TRANSPORTS),
    _k("transport.poll_interval_s", 2.0, "float", "short polling period (s)", lo=0.0, lo_open=True),
    _k(
        "transport.poll_schedule",
        "fixed_rate",
        "choice",
        "short polling: polls every interval (fixed_rate) or waits the interval after each "
        "response (fixed_delay)",
        choices=POLL_SCHEDULES,
    ),
    _k(
        "transport.long_poll_hold_s",
        30.0,
        "float",
        "how long the server holds a long poll (s)",
        lo=0.0,
        lo_open=True,
    ),
    _k(
        "transport.heartbeat_s",
        30.0,
        "float",
        "heartbeat period on push connections (s)",
        lo=0.0,
        lo_open=True,
    ),
    _k(
        "transport.liveness_timeout_s",
        75.0,
        "float",
        "the server drops a push connection that sent nothing (no heartbeat) for this long (s)",
        lo=0.0,
        lo_open=True,
    ),
    _k(
        "transport.web_share",
        0.3,
        "float",
        "hybrid: share of (web) clients on long polling, the rest on push",
        lo=0.0,
        hi=1.0,
    ),
    _k("transport.batch_max", 50, "int", "most messages one poll response carries", lo=1),
    # --- idle pollers in bulk (immodel.sim.idle_poll) ---
    _k(
        "transport.idle_poll_mode",
        "exact",
        "choice",
        "fixed-rate short pollers with nothing waiting: exact (each poll simulated) or "
        "aggregated (counted and charged to the servers in bulk, individual again when a "
        "message waits); other transports ignore it",
        choices=IDLE_POLL_MODES,
    ),
    # --- end idle pollers ---
    _k(
        "transport.request_timeout_s",
        10.0,
        "float",
        "a poll without a response for this long (beyond any hold) is repeated (s)",
        lo=0.0,
        lo_open=True,
    ),
    _k(
        "transport.handshake_rtts",
        2,
        "int",
        "round trips to set up a connection (TCP + TLS), before the login round trip",
        lo=0,
    ),
    _k(
        "transport.reconnect_base_s",
        1.0,
        "float",
        "first reconnect backoff (s)",
        lo=0.0,
        lo_open=True,
    ),
    _k(
        "transport.reconnect_max_s",
        30.0,
        "float",
        "largest reconnect backoff (s)",
        lo=0.0,
        lo_open=True,
    ),
    # --- reliability -----------------------------------------------------------------------
    _k("reliability.uplink_retry", True, "bool", "the sender retries until the server replies"),
    _k(
        "reliability.uplink_timeout_s",
        5.0,
        "float",
        "sender's reply timeout (s)",
        lo=0.0,
        lo_open=True,
    ),
    _k(
        "reliability.uplink_backoff",
        1.0,
        "float",
        "multiplier of the reply timeout after each attempt (1: constant, 2: doubling)",
        lo=1.0,
    ),
    _k(
        "reliability.uplink_max_attempts",
        5,
        "int",
        "attempts before the app is told 'failed'",
        lo=1,
    ),
    _k("reliability.server_dedup", True, "bool", "the server de-duplicates retries by message id"),
    _k(
        "reliability.dedup_window_s",
        120.0,
        "float",
        "how long the server remembers an id (s)",
        lo=0.0,
        lo_open=True,
    ),
    _k(
        "reliability.dedup_durable",
        False,
        "bool",
        "the dedup window survives a server crash (kept with the store)",
    ),
    _k(
        "reliability.downlink_ack",
        True,
        "bool",
        "pushed messages wait in a pending-ACK queue and are retransmitted until ACKed",
    ),
    _k(
        "reliability.ack_timeout_s",
        5.0,
        "float",
        "retransmit timeout of the pending-ACK queue (s)",
        lo=0.0,
        lo_open=True,
    ),
    _k("reliability.client_dedup", True, "bool", "the client de-duplicates by message id"),
    _k(
        "reliability.client_dedup_window_s",
        600.0,
        "float",
        "how long the client remembers a shown id (s)",
        lo=0.0,
        lo_open=True,
    ),
    _k(
        "reliability.sync",
        True,
        "bool",
        "master switch of cursor sync with the server's store (false turns off all three "
        "triggers below)",
    ),
    _k(
        "reliability.sync_on_receipt",
        True,
        "bool",
        "sync by timestamp cursor on every 1:1 receipt (the article's figure 4)",
    ),
    _k("reliability.sync_on_gap", True, "bool", "sync when a group seq gap is seen"),
    _k("reliability.sync_on_reconnect", True, "bool", "sync after every (re)connect"),
    _k(
        "reliability.sync_cursor",
        "conversation",
        "choice",
        "what a sync request names: a cursor per conversation (the article) or one cursor "
        "into a per-user inbox that every stored copy is appended to",
        choices=("conversation", "inbox"),
    ),
    # --- seq-gap waits (group order) ------------------------------------------------------
    _k(
        "reliability.gap_wait_ms",
        0.0,
        "float",
        "how long a client waits for a missing group seq before it syncs (ms; 0: sync at "
        "once); the wait ends early when the gap fills",
        lo=0.0,
    ),
    # --- server ----------------------------------------------------------------------------
    _k(
        "server.nodes",
        1,
        "int",
        "logic nodes (stages, dedup, ordering, pending-ACK, fan-out); a user maps to one by "
        "a stable hash over the live nodes",
        lo=1,
    ),
    _k("server.workers", 8, "int", "workers per processing stage per logic node", lo=1),
    _k(
        "server.access_nodes",
        1,
        "int",
        "access nodes (connections, sessions, heartbeats, held polls); a client picks one "
        "at connect",
        lo=1,
    ),
    _k("server.access_workers", 8, "int", "workers (cores) per access node", lo=1),
    _k(
        "server.failover_detect_s",
        3.0,
        "float",
        "how long the access tier takes to notice a dead logic node and route its users to "
        "the survivors (s)",
        lo=0.0,
    ),
    _ms(
        "server.tls_handshake_ms",
        1.0,
        "access: CPU of a TLS handshake and login (RSA-2048 signature ≈ 1 ms per core)",
    ),
    _ms(
        "server.access_request_ms",
        0.02,
        "access: decode, session lookup and forwarding of one request (ms)",
    ),
    _ms("server.access_frame_ms", 0.01, "access: encrypting and writing one downlink frame (ms)"),
    _ms("server.heartbeat_ms", 0.005, "access: handling one heartbeat (ms)"),
    _ms("server.hold_ms", 0.01, "access: parking a long poll and its timer (ms)"),
    _k(
        "server.held_poll_bytes",
        8192,
        "int",
        "access: memory one held long poll keeps (socket buffers, request, timer; bytes)",
        lo=0,
    ),
    _ms("server.ack_ms", 0.01, "logic: removing acknowledged pending-ACK entries, per ACK (ms)"),
    _ms("server.retransmit_ms", 0.02, "logic: one pending-ACK retransmission (ms)"),
    _k(
        "server.service_dist",
        "exponential",
        "choice",
        "service-time distribution of the stages",
        choices=SERVICE_DISTS,
    ),
    _ms("server.auth_ms", 0.3, "mean service time of login/auth (ms)"),
    _ms("server.checks_ms", 0.3, "mean service time of mute/blacklist/friend checks (ms)"),
    _ms(
        "server.callback_ms",
        30.0,
        "mean latency of the business backend's before-send callback (ms)",
    ),
    _ms("server.screening_ms", 5.0, "mean service time of content screening (ms)"),
    _ms("server.recent_contacts_ms", 0.3, "mean service time of the recent-contacts update (ms)"),
    _ms("server.store_ms", 1.0, "mean service time of storing a message (ms)"),
    _ms("server.status_ms", 0.1, "mean service time of the recipient status lookup (ms)"),
    _ms("server.fanout_ms_per_recipient", 0.02, "fan-out cost per recipient (ms)"),
    _ms("server.inbox_write_ms", 0.01, "write diffusion: cost of one member's inbox copy (ms)"),
    _ms("server.poll_ms", 0.2, "mean service time of answering a poll (ms)"),
    _ms("server.poll_ms_per_message", 0.01, "poll: extra service time per message returned (ms)"),
    _ms("server.sync_ms", 0.2, "sync: base service time of answering one page (ms)"),
    _ms(
        "server.sync_ms_per_conversation",
        0.002,
        "sync: service time per conversation of the user scanned (ms)",
    ),
    _ms("server.sync_ms_per_item", 0.01, "sync: service time per message returned (ms)"),
    _k("server.callback_enabled", False, "bool", "call the business backend before each send"),
    _k("server.callback_timeout_s", 0.5, "float", "callback timeout (s)", lo=0.0, lo_open=True),
    _k(
        "server.callback_timeout_default",
        "allow",
        "choice",
        "what a callback timeout means",
        choices=("allow", "reject"),
    ),
    _k(
        "server.callback_reject_prob",
        0.0,
        "float",
        "share of sends the backend rejects",
        lo=0.0,
        hi=1.0,
    ),
    _k("server.screening_enabled", False, "bool", "screen message content"),
    _k(
        "server.screening_block_prob",
        0.0,
        "float",
        "share of messages screening blocks",
        lo=0.0,
        hi=1.0,
    ),
    _k(
        "server.screening_policy",
        "block",
        "choice",
        "what the business does with a screening hit: block it (the sender learns), deliver "
        "it with a flag, replace its text, or show it to its sender only",
        choices=SCREENING_POLICIES,
    ),
    _k("server.require_friendship", False, "bool", "1:1 messages only between friends"),
    _k(
        "server.friend_fraction",
        1.0,
        "float",
        "share of 1:1 pairs that are friends",
        lo=0.0,
        hi=1.0,
    ),
    _k("server.muted_fraction", 0.0, "float", "share of users who are muted", lo=0.0, hi=1.0),
    _k(
        "server.blacklist_fraction",
        0.0,
        "float",
        "share of 1:1 pairs where the recipient blacklisted the sender",
        lo=0.0,
        hi=1.0,
    ),
    _k(
        "server.diffusion",
        "write",
        "choice",
        "group storage: one inbox copy per member (write) or one group timeline (read)",
        choices=DIFFUSIONS,
    ),
    # --- group diffusion costs and burnt seqs ----------------------------------------------
    _ms(
        "server.timeline_read_ms",
        0.05,
        "read diffusion: reading one group timeline, on every poll and every sync page, for "
        "each group the user is in (ms)",
    ),
    _k(
        "server.seq_burn_prob",
        0.0,
        "float",
        "probability that a failed group write had already taken its seq, which is then "
        "burnt (a gap no message fills; sync pages list it)",
        lo=0.0,
        hi=1.0,
    ),
    _k(
        "server.offline_push_ms",
        500.0,
        "float",
        "latency of the vendor's offline push (ms)",
        lo=0.0,
    ),
    _k(
        "server.offline_push_loss",
        0.02,
        "float",
        "loss of the vendor's offline push",
        lo=0.0,
        hi=1.0,
    ),
    _k(
        "server.offline_push_dist",
        "constant",
        "choice",
        "latency distribution of the vendor's offline push, mean server.offline_push_ms",
        choices=OFFLINE_PUSH_DISTS,
    ),
    _k(
        "server.offline_push_rate_per_s",
        0.0,
        "float",
        "the vendor's per-app limit on notifications (per s, 1 s of burst; over it a "
        "notification is dropped; 0: no limit)",
        lo=0.0,
    ),
    _k(
        "server.offline_push_collapse",
        False,
        "bool",
        "notify a device at most once while its last notification is unread (later "
        "messages are collapsed into it until the device logs in)",
    ),
    _k(
        "server.login_catchup",
        "queue_and_sync",
        "choice",
        "what carries the backlog at login: queue_and_sync (the offline queue is pushed and "
        "the reconnect sync page carries it again) or one_transfer (the reconnect sync page "
        "alone when one follows, else the offline queue)",
        choices=LOGIN_CATCHUPS,
    ),
    # --- security --------------------------------------------------------------------------
    _k(
        "security.dns",
        "none",
        "choice",
        "name resolution on the connect path: none (not modelled: the client has the address), "
        "local (the system resolver: a lookup, cached, that can be hijacked) or httpdns (an "
        "HTTP request to a fixed-address resolver, never hijacked; local DNS when it fails)",
        choices=DNS_MODES,
    ),
    _k(
        "security.dns_latency_ms",
        {"dist": "lognormal", "median": 30.0, "p99": 300.0},
        "latency",
        "time of one local DNS lookup (ms; a number or a latency table)",
    ),
    _k(
        "security.dns_cache_ttl_s",
        300.0,
        "float",
        "how long a client keeps a local DNS answer (s; 0: look up at every connect)",
        lo=0.0,
    ),
    _k(
        "security.dns_hijack_prob",
        0.0,
        "float",
        "probability that a local DNS lookup answers with an attacker's address",
        lo=0.0,
        hi=1.0,
    ),
    _k(
        "security.httpdns_latency_ms",
        {"dist": "lognormal", "median": 60.0, "p99": 400.0},
        "latency",
        "time of one HTTPDNS request to the fixed-address resolver (ms)",
    ),
    _k(
        "security.httpdns_fail_prob",
        0.0,
        "float",
        "probability that an HTTPDNS request fails (the client falls back to local DNS)",
        lo=0.0,
        hi=1.0,
    ),
    _k(
        "security.channel",
        "encrypted",
        "choice",
        "the client channel: encrypted (TLS: server identity verified, tampering detected) "
        "or plaintext (an on-path attacker reads and alters what passes)",
        choices=CHANNELS,
    ),
    _k(
        "security.tamper_prob",
        0.0,
        "float",
        "probability that an on-path attacker alters a message pushed or polled down to a client",
        lo=0.0,
        hi=1.0,
    ),
    _k(
        "security.forged_per_s",
        0.0,
        "float",
        "rate of frames (send, poll, sync) an attacker injects at the access tier without a "
        "session (per s)",
        lo=0.0,
    ),
    _k(
        "security.epoch_s",
        1767225600,
        "int",
        "Unix time of the run's t = 0, the clock UserSig issue and expiry times use "
        "(default 2026-01-01T00:00:00Z)",
        lo=0,
    ),
    _k(
        "security.usersig_ttl_s",
        15552000,
        "int",
        "lifetime of a UserSig (s; default the vendor's 180 days)",
        lo=1,
    ),
    _k(
        "security.usersig_issued",
        "run_start",
        "choice",
        "when each user's first UserSig was issued: run_start (at t = 0) or steady_state "
        "(uniformly over the last lifetime, as in a population that has run for a while)",
        choices=("run_start", "steady_state"),
    ),
    _k(
        "security.usersig_fetch_ms",
        {"dist": "lognormal", "median": 80.0, "p99": 500.0},
        "latency",
        "time for the SDK to fetch a fresh UserSig from the business backend (ms)",
    ),
    _k(
        "security.attack_logins_per_s",
        0.0,
        "float",
        "rate of hostile logins (per s), each one of: forged (wrong key), tampered, another "
        "user's token, or a replay of a captured token",
        lo=0.0,
    ),
    _k(
        "security.replay_after_s",
        3600.0,
        "float",
        "how long after capturing a UserSig an attacker replays it (s)",
        lo=0.0,
    ),
    # --- live-broadcast rooms (immodel.sim.live; 0 rooms: none, the default) ---------------
    _k(
        "workload.live_rooms",
        0,
        "int",
        "live-broadcast rooms (capped, lossy by design, no ACK or offline store; 0: none)",
        lo=0,
    ),
    _k(
        "workload.live_audience",
        1000.0,
        "distribution",
        "viewers per room: a number, or a distribution table as network.latency_ms takes "
        "(one draw per room, rounded, at least 1)",
    ),
    _k(
        "workload.live_send_rate",
        20.0,
        "float",
        "messages per second offered to each room by its speakers (Poisson)",
        lo=0.0,
    ),
    _k(
        "workload.live_priority",
        {"high": 0.0, "normal": 1.0, "low": 0.0},
        "shares",
        "shares of the offered live messages by priority (normalised to sum 1)",
        choices=("high", "normal", "low"),
    ),
    _k(
        "workload.live_mean_stay_s",
        0.0,
        "float",
        "mean time a viewer stays in a room (s, exponential; joins keep the audience "
        "steady; 0: every viewer stays for the whole run)",
        lo=0.0,
    ),
    _k(
        "workload.live_viewer_mode",
        "auto",
        "choice",
        "per_viewer (one state per viewer), cohort (viewers grouped by poll phase and "
        "presence, counts exact) or auto (per_viewer up to 2000 viewers a room)",
        choices=("auto", "cohort", "per_viewer"),
    ),
    _k(
        "workload.live_cohorts",
        1000,
        "int",
        "cohort mode: poll-phase cohorts per room (viewers in one share network draws)",
        lo=1,
    ),
    _k(
        "server.live_max_msgs_per_s",
        40.0,
        "float",
        "cap on the messages a live room accepts per second; over it, low priority is "
        "dropped first (high only when high alone exceeds it)",
        lo=0.0,
        lo_open=True,
    ),
    _k(
        "server.live_window_ms",
        1000.0,
        "float",
        "the cap's window (ms): each window accepts live_max_msgs_per_s × window messages "
        "(rounded down, at least 1) and is published when it ends",
        lo=0.0,
        lo_open=True,
    ),
    _k(
        "server.live_buffer_msgs",
        200,
        "int",
        "recent messages a live room keeps for its viewers' polls (older ones are missed)",
        lo=1,
    ),
    # --- backend senders over the REST API (immodel.sim.backend) ---------------------------
    _k(
        "workload.rest_rate_per_s",
        0.0,
        "float",
        "REST calls per second from the business backend (Poisson), each a single send "
        "(or a batch, workload.rest_batch_size)",
        lo=0.0,
    ),
    _k(
        "workload.rest_batch_size",
        1,
        "int",
        "users per REST call of workload.rest_rate_per_s: 1 a single send, more a batch send "
        "(one 1:1 message to each of that many distinct users)",
        lo=1,
        hi=500,
    ),
    _k(
        "workload.rest_broadcasts",
        (),
        "times",
        "times (s, in [0, duration_s)) at which the admin broadcasts one message to every user "
        "(one REST call the server fans out)",
    ),
    _k(
        "workload.rest_keep_alive",
        False,
        "bool",
        "the backend keeps its HTTPS connections open (false: TCP + TLS handshake per call)",
    ),
    _k(
        "workload.rest_latency_ms",
        {"dist": "lognormal", "median": 20.0, "p99": 80.0},
        "latency",
        "one-way latency between the business backend and the access tier (ms)",
    ),
    _k(
        "server.rest_max_calls_per_s",
        200,
        "int",
        "REST calls the server admits per app per whole second (the vendor's default 200); "
        "over it a call is refused with a retry-after",
        lo=1,
    ),
    _k(
        "workload.rest_max_retries",
        -1,
        "int",
        "retries after a rate-limit refusal before the backend gives up on a REST call (its "
        "messages fail: failure_reason rest_gave_up); -1: it retries until admitted",
        lo=-1,
    ),
    # --- faults ----------------------------------------------------------------------------
    _k(
        "faults",
        (),
        "faults",
        "a list of fault tables, e.g. {kind = 'server_crash', at_s = 120, down_s = 20}",
    ),
)

KEYS: dict[str, Key] = {k.name: k for k in SCHEMA}

# Fault kinds and their parameters: name → (default, validator description, check).
FAULT_KINDS: dict[str, dict[str, Any]] = {
    "server_crash": {"at_s": None, "down_s": 20.0, "node": 0},
    "gateway_crash": {"at_s": None, "share": 1.0, "node": -1, "down_s": 0.0},
    "client_crash": {"at_s": None, "share": 0.1, "keep_local_state": True},
    "partition": {"at_s": None, "down_s": 20.0, "share": 0.1, "direction": "both"},
    "loss_burst": {"at_s": None, "down_s": 10.0, "uplink_loss": 0.5, "downlink_loss": 0.5},
    "store_failure": {"at_s": None, "down_s": 10.0, "prob": 0.5, "node": 0},
    "slow_server": {"at_s": None, "down_s": 10.0, "extra_ms": 8000.0, "node": 0},
    "clock_skew": {"at_s": 0.0, "skew_ms": 500.0, "node": 1},
}


def _suggest(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _check_number(key: Key, value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key.name} must be {key.allowed()}, got {value!r}")
    if key.kind == "int":
        if isinstance(value, float):
            # Strict: 1e3 or 1000.0 for a count is more often a slip (a rate typed into a
            # count) than intended, and TOML has a literal for integers.
            hint = f" (a float; write {int(value)})" if value.is_integer() else ""
            raise ConfigError(f"{key.name} must be {key.allowed()}, got {value!r}{hint}")
    else:
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{key.name} must be {key.allowed()}, got {value!r}")
    too_low = key.lo is not None and (value <= key.lo if key.lo_open else value < key.lo)
    too_high = key.hi is not None and value > key.hi
    if too_low or too_high:
        raise ConfigError(f"{key.name} must be {key.allowed()}, got {value!r}")
    return value


def _check_latency(key: Key, value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            raise ConfigError(
                f"{key.name} must be a number ≥ 0 or a distribution table, got {value!r}"
            )
        return float(value)
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{key.name} must be a number ≥ 0 or a table with dist = one of "
            f"{', '.join(LATENCY_DISTS)}, got {value!r}"
        )
    dist = value.get("dist")
    fields_by_dist = {
        "constant": ("value",),
        "lognormal": ("median", "p99"),
        "exponential": ("mean",),
        "empirical": ("samples",),
    }
    if dist not in fields_by_dist:
        raise ConfigError(
            f"{key.name}.dist must be one of {', '.join(LATENCY_DISTS)}, got {dist!r}"
        )
    needed = fields_by_dist[dist]
    extra = set(value) - set(needed) - {"dist"}
    if extra:
        bad = sorted(extra)[0]
        raise ConfigError(
            f"{key.name}: unknown field '{bad}' for dist = '{dist}' (allowed: {', '.join(needed)})"
        )
    out: dict[str, Any] = {"dist": dist}
    for f in needed:
        if f not in value:
            raise ConfigError(f"{key.name}: dist = '{dist}' needs field '{f}'")
        v = value[f]
        if f == "samples":
            if (
                not isinstance(v, list | tuple)
                or not v
                or any(
                    isinstance(s, bool)
                    or not isinstance(s, int | float)
                    or not math.isfinite(s)
                    or s < 0
                    for s in v
                )
            ):
                raise ConfigError(f"{key.name}.samples must be a non-empty list of numbers ≥ 0")
            out[f] = [float(s) for s in v]
        else:
            if (
                isinstance(v, bool)
                or not isinstance(v, int | float)
                or not math.isfinite(v)
                or v < 0
            ):
                raise ConfigError(f"{key.name}.{f} must be a number ≥ 0, got {v!r}")
            out[f] = float(v)
    if dist == "lognormal" and not (0 < out["median"] <= out["p99"]):
        raise ConfigError(
            f"{key.name}: lognormal needs 0 < median ≤ p99, "
            f"got median={out['median']:g}, p99={out['p99']:g}"
        )
    return out


def _check_devices(key: Key, value: Any) -> dict[str, dict[str, Any]]:
    """``workload.devices``: kind name → {share, transport}; {} is the default device."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key.name} must be {key.allowed()}, got {value!r}")
    out: dict[str, dict[str, Any]] = {}
    for i, (name, entry) in enumerate(value.items()):
        where = f"{key.name}.{name}"
        if not str(name).isidentifier():
            raise ConfigError(f"{key.name}: a device kind must be a plain name, got {name!r}")
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where} must be a table {{share = …, transport = …}}")
        extra = set(entry) - {"share", "transport"}
        if extra:
            raise ConfigError(
                f"{where}: unknown field '{sorted(extra)[0]}' (allowed: share, transport)"
            )
        share = entry.get("share", 1.0)
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise ConfigError(f"{where}.share must be a number in [0, 1], got {share!r}")
        if i == 0 and share != 1:
            raise ConfigError(
                f"{where}.share must be 1.0: the first device kind is every user's, got {share!r}"
            )
        transport = entry.get("transport", "")
        if transport != "" and transport not in DEVICE_TRANSPORTS:
            raise ConfigError(
                f"{where}.transport must be one of {', '.join(DEVICE_TRANSPORTS)}, "
                f"got {transport!r}"
            )
        out[str(name)] = {"share": float(share), "transport": transport}
    return out


def _check_faults(key: Key, value: Any) -> tuple[dict[str, Any], ...]:
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list | tuple):
        raise ConfigError(f"faults must be a list of tables, got {value!r}")
    out = []
    for i, f in enumerate(value):
        where = f"faults[{i}]"
        if not isinstance(f, Mapping):
            raise ConfigError(
                f"{where} must be a table such as {{kind = 'server_crash', "
                f"at_s = 120, down_s = 20}}"
            )
        kind = f.get("kind")
        if kind not in FAULT_KINDS:
            raise ConfigError(
                f"{where}.kind must be one of {', '.join(FAULT_KINDS)}, "
                f"got {kind!r}{_suggest(str(kind), FAULT_KINDS)}"
            )
        params = FAULT_KINDS[kind]
        resolved: dict[str, Any] = {"kind": kind}
        for name in f:
            if name == "kind":
                continue
            if name not in params:
                raise ConfigError(
                    f"{where}: unknown field '{name}' for kind = '{kind}' "
                    f"(allowed: {', '.join(params)}){_suggest(name, params)}"
                )
        for name, default in params.items():
            v = f.get(name, default)
            if v is None:
                raise ConfigError(f"{where}: kind = '{kind}' needs field '{name}'")
            if name == "direction":
                if v not in ("both", "uplink", "downlink"):
                    raise ConfigError(f"{where}.direction must be one of both, uplink, downlink")
            elif name == "keep_local_state":
                if not isinstance(v, bool):
                    raise ConfigError(f"{where}.keep_local_state must be true or false")
            elif name == "node":
                # gateway_crash: -1 (the default) means "a share of connections", not a node
                low = -1 if kind == "gateway_crash" else 0
                if isinstance(v, bool) or not isinstance(v, int) or v < low:
                    raise ConfigError(f"{where}.node must be an integer ≥ 0, got {v!r}")
            else:
                if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                    raise ConfigError(f"{where}.{name} must be a number, got {v!r}")
                v = float(v)
                if name in ("share", "prob", "uplink_loss", "downlink_loss") and not 0 <= v <= 1:
                    raise ConfigError(f"{where}.{name} must be in [0, 1], got {v:g}")
                if name in ("at_s", "down_s", "extra_ms") and v < 0:
                    raise ConfigError(f"{where}.{name} must be ≥ 0, got {v:g}")
            resolved[name] = v
        out.append(resolved)
    return tuple(out)


def validate_value(name: str, value: Any) -> Any:
    """Validate one dotted key's value and return it normalised (ints, floats, tuples)."""
    if name not in KEYS:
        raise ConfigError(f"unknown scenario key '{name}'{_suggest(name, KEYS)}")
    key = KEYS[name]
    if key.kind in ("int", "float"):
        return _check_number(key, value)
    if key.kind == "drain":
        if value == AUTO:
            return value
        if isinstance(value, str):
            raise ConfigError(f"{name} must be {key.allowed()}, got {value!r}")
        return _check_number(key, value)
    if key.kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        return value
    if key.kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {value!r}")
        return value
    if key.kind == "choice":
        if value not in key.choices:
            raise ConfigError(
                f"{name} must be {key.allowed()}, got {value!r}{_suggest(str(value), key.choices)}"
            )
        return value
    if key.kind in ("latency", "distribution"):  # a distribution: as latency, unitless
        return _check_latency(key, value)
    if key.kind == "shares":
        return _check_shares(key, value)
    if key.kind == "times":
        return _check_times(key, value)
    if key.kind == "devices":
        return _check_devices(key, value)
    return _check_faults(key, value)


def _check_shares(key: Key, value: Any) -> dict[str, float]:
    """A table of non-negative shares over ``key.choices`` with a positive sum; missing
    entries are 0. Returned normalised to sum 1, every entry present."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key.name} must be {key.allowed()}, got {value!r}")
    for name, v in value.items():
        if name not in key.choices:
            raise ConfigError(
                f"{key.name}: unknown entry '{name}' (allowed: {', '.join(key.choices)})"
                f"{_suggest(str(name), key.choices)}"
            )
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise ConfigError(f"{key.name}.{name} must be a number ≥ 0, got {v!r}")
    total = float(sum(value.values()))
    if total <= 0:
        raise ConfigError(f"{key.name} must have a positive sum, got {dict(value)!r}")
    return {c: float(value.get(c, 0.0)) / total for c in key.choices}


def _check_times(key: Key, value: Any) -> tuple[float, ...]:
    """A list of simulated times (s ≥ 0), returned sorted as a tuple."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list | tuple) or any(
        isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t < 0
        for t in value
    ):
        raise ConfigError(f"{key.name} must be {key.allowed()}, got {value!r}")
    return tuple(sorted(float(t) for t in value))


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested TOML tables → dotted keys. Latency tables stay whole (they are values)."""
    flat: dict[str, Any] = {}
    for k, v in tree.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping) and name not in KEYS:
            flat.update(flatten(v, prefix=name + "."))
        else:
            flat[name] = v
    return flat


def parse_override(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with a TOML value (``true``, ``0.05``, ``"push"``); bare words are strings."""
    if "=" not in text:
        raise ConfigError(f"--set takes KEY=VALUE, got {text!r}")
    name, raw = text.split("=", 1)
    name, raw = name.strip(), raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return name, value


def _builtin_dir():
    return resources.files("immodel") / "scenarios"


def builtin_scenarios() -> dict[str, str]:
    """Built-in scenario names → their one-line description."""
    out = {}
    for entry in sorted(_builtin_dir().iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
            out[entry.name[:-5]] = data.get("description", "")
    return out


def _read_source(source: str | Path) -> tuple[dict[str, Any], str]:
    path = Path(source)
    if path.suffix == ".toml" or path.exists():
        if path.is_dir():
            raise ConfigError(f"'{source}' is a directory, not a scenario file")
        if not path.is_file():
            raise ConfigError(f"scenario file '{source}' does not exist")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"scenario file '{source}' is not UTF-8 text") from None
        except OSError as exc:
            raise ConfigError(f"scenario file '{source}' cannot be read: {exc.strerror}") from None
        default_name = path.stem
    else:
        entry = _builtin_dir() / f"{source}.toml"
        if not entry.is_file():
            names = list(builtin_scenarios())
            raise ConfigError(
                f"no scenario file or built-in scenario named '{source}' "
                f"(built-ins: {', '.join(names)}){_suggest(str(source), names)}"
            )
        text = entry.read_text(encoding="utf-8")
        default_name = str(source)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"scenario '{source}' is not valid TOML: {exc}") from None
    if not data:
        # An empty file would silently run every default: almost certainly the wrong file.
        raise ConfigError(
            f"scenario file '{source}' sets no keys (it is empty); state at least a name, "
            "or use the built-in 'baseline'"
        )
    return data, default_name


@dataclass(frozen=True)
class Scenario:
    """A validated scenario: every key of :data:`SCHEMA` with a value.

    Build one with :meth:`load` (file, built-in name or mapping, plus overrides) or
    :meth:`from_mapping`; derive variants with :meth:`with_overrides`. Values are read by
    dotted key, ``scenario["network.downlink_loss"]``. Instances are immutable and
    hashable by their TOML text, so sweeps can key results on them.
    """

    values: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None
    ) -> Scenario:
        """Validate nested or dotted ``data`` then ``overrides`` on top of the defaults."""
        values = {k.name: k.default for k in SCHEMA}
        for source in (data or {}), (overrides or {}):
            for name, value in flatten(source).items():
                values[name] = validate_value(name, value)
        _check_consistency(values)
        return cls(values)

    @classmethod
    def load(
        cls,
        source: str | Path | Mapping[str, Any] | Scenario = "baseline",
        overrides: Mapping[str, Any] | Iterable[str] | None = None,
        seed: int | None = None,
    ) -> Scenario:
        """A scenario from a TOML path, a built-in name or a mapping, with overrides.

        ``overrides`` is a mapping of dotted keys or an iterable of ``KEY=VALUE`` strings
        (as ``--set`` gives them); ``seed`` replaces the file's seed.
        """
        if isinstance(source, Scenario):
            data: Mapping[str, Any] = source.values
            default_name = source["name"]
        elif isinstance(source, Mapping):
            data, default_name = source, "custom"
        else:
            data, default_name = _read_source(source)
        if overrides is None:
            over: dict[str, Any] = {}
        elif isinstance(overrides, Mapping):
            over = dict(overrides)
        else:
            over = dict(parse_override(o) for o in overrides)
        if seed is not None:
            over["seed"] = seed
        flat = flatten(data)
        if not isinstance(source, Scenario):
            _check_explicit(flat, over)
        flat.setdefault("name", default_name)
        return cls.from_mapping(flat, over)

    def __getitem__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise ConfigError(f"unknown scenario key '{name}'{_suggest(name, KEYS)}") from None

    def with_overrides(self, overrides: Mapping[str, Any]) -> Scenario:
        """A copy with some dotted keys changed (validated)."""
        return Scenario.from_mapping(self.values, overrides)

    @property
    def drain_is_auto(self) -> bool:
        """True when ``drain_s`` is ``"auto"`` (not yet resolved to a number)."""
        return self.values["drain_s"] == AUTO

    def required_drain_s(self) -> float:
        """The drain this scenario needs: :func:`immodel.sim.faults.required_drain_s`.

        Raises :class:`~immodel.errors.ConfigError` when no drain is long enough (a
        network that loses every packet).
        """
        from immodel.sim.faults import required_drain_s

        try:
            return float(required_drain_s(self))
        except ValueError as exc:
            raise ConfigError(f"drain_s: the required drain cannot be derived ({exc})") from None

    def resolved(self) -> Scenario:
        """This scenario ready to simulate: ``drain_s = "auto"`` replaced by
        :meth:`required_drain_s` (a number stays as it is). The run writes this one to
        ``scenario.toml``, so re-running a saved scenario uses the same drain."""
        if not self.drain_is_auto:
            return self
        return Scenario({**self.values, "drain_s": self.required_drain_s()})

    def to_dict(self) -> dict[str, Any]:
        """Nested plain dict, as it would be written in a TOML file."""
        nested: dict[str, Any] = {}
        for name, value in self.values.items():
            parts = name.split(".")
            node = nested
            for p in parts[:-1]:
                node = node.setdefault(p, {})
            node[parts[-1]] = list(value) if isinstance(value, tuple) else value
        return nested

    def to_toml(self) -> str:
        """The fully resolved scenario as TOML (re-loads to an equal scenario)."""
        return tomli_w.dumps(self.to_dict())

    def __hash__(self) -> int:
        return hash(self.to_toml())


def _check_idle_poll(values: dict[str, Any]) -> None:
    """``transport.idle_poll_mode = "aggregated"`` draws no loss for the cohort's polls
    (:mod:`immodel.sim.idle_poll`), so it is refused where a packet can be lost."""
    if values["transport.idle_poll_mode"] != "aggregated":
        return
    lossy = [
        k
        for k in ("network.uplink_loss", "network.downlink_loss", "network.burst_enter_prob")
        if values[k] > 0
    ]
    lossy += [
        f"a {f['kind']} fault" for f in values["faults"] if f["kind"] in ("partition", "loss_burst")
    ]
    if lossy:
        raise ConfigError(
            "transport.idle_poll_mode = 'aggregated' needs a network that loses nothing "
            f"(the cohort's polls draw no loss), but this scenario has {', '.join(lossy)}; "
            "use 'exact'"
        )


def _check_consistency(values: dict[str, Any]) -> None:
    users = values["workload.users"]
    if values["workload.group_share"] > 0:
        if values["workload.groups"] < 1:
            raise ConfigError("workload.groups must be ≥ 1 when workload.group_share > 0")
        if values["workload.group_size"] > users:
            raise ConfigError(
                f"workload.group_size must be ≤ workload.users ({users}), "
                f"got {values['workload.group_size']}"
            )
    if values["workload.contacts"] >= users:
        raise ConfigError(
            f"workload.contacts must be < workload.users ({users}), "
            f"got {values['workload.contacts']}"
        )
    churn = (values["workload.mean_online_s"] > 0, values["workload.mean_offline_s"] > 0)
    if any(churn) and not all(churn):
        raise ConfigError(
            "workload.mean_online_s and workload.mean_offline_s must both be > 0 "
            "for churn, or both 0 for none"
        )
    for name, entry in values["workload.devices"].items():
        if entry["transport"] == "" and values["transport.kind"] == "hybrid":
            raise ConfigError(
                f"workload.devices.{name}.transport must be one of "
                f"{', '.join(DEVICE_TRANSPORTS)} when transport.kind = 'hybrid'"
            )
    if values["transport.reconnect_max_s"] < values["transport.reconnect_base_s"]:
        raise ConfigError("transport.reconnect_max_s must be ≥ transport.reconnect_base_s")
    _check_live(values)
    _check_idle_poll(values)
    if values["reliability.sync_cursor"] == "inbox" and values["server.diffusion"] != "write":
        raise ConfigError(
            "reliability.sync_cursor = 'inbox' needs server.diffusion = 'write': read "
            "diffusion keeps a group message only on the group timeline, with no copy in "
            "the members' inboxes to sync from"
        )
    for t in values["workload.rest_broadcasts"]:
        if t >= values["duration_s"]:
            raise ConfigError(
                f"workload.rest_broadcasts must hold times in [0, duration_s) "
                f"([0, {values['duration_s']:g}) s), got {t:g}"
            )
    if values["workload.rest_batch_size"] > users:
        raise ConfigError(
            f"workload.rest_batch_size must be ≤ workload.users ({users}), "
            f"got {values['workload.rest_batch_size']}"
        )
    nodes = values["server.nodes"]
    access = values["server.access_nodes"]
    drain = values["drain_s"]
    for i, f in enumerate(values["faults"]):
        if f["kind"] == "gateway_crash":
            if f["node"] >= access:
                raise ConfigError(
                    f"faults[{i}].node must be < server.access_nodes ({access}), got {f['node']}"
                )
        elif "node" in f and f["node"] >= nodes:
            raise ConfigError(f"faults[{i}].node must be < server.nodes ({nodes}), got {f['node']}")
        # With drain_s = "auto" the drain grows to cover every fault; with a number, a
        # fault that starts when the run has ended would silently never happen.
        if drain != AUTO:
            end = values["duration_s"] + drain
            if f["at_s"] >= end:
                raise ConfigError(
                    f"faults[{i}].at_s must be < duration_s + drain_s ({end:g} s, when the "
                    f'run ends), got {f["at_s"]:g}; or set drain_s = "auto"'
                )


def _check_live(values: dict[str, Any]) -> None:
    """Live rooms: the cap must let at least one message through per window."""
    per_window = values["server.live_max_msgs_per_s"] * values["server.live_window_ms"] / 1000.0
    if values["workload.live_rooms"] > 0 and math.floor(per_window + 1e-9) < 1:
        raise ConfigError(
            "server.live_max_msgs_per_s × server.live_window_ms / 1000 must be ≥ 1 "
            f"(messages a window may accept), got {per_window:g}"
        )


def _check_explicit(flat: Mapping[str, Any], over: Mapping[str, Any]) -> None:
    """Keys stated in one scenario source that its own transport ignores.

    Only what the user wrote is checked (a file plus its overrides), not inherited
    defaults, so a sweep may set a hybrid-only key for the grid's hybrid points.
    """
    if set(flat) >= set(KEYS):
        # A resolved scenario (scenario.toml beside a run) states every key, including
        # the hybrid-only ones of a run that was switched to another transport.
        flat = {}
    default_kind = KEYS["transport.kind"].default
    kind = over.get("transport.kind", flat.get("transport.kind", default_kind))
    # Checked per source: a file that states web_share for its own non-hybrid transport,
    # or an override of web_share for a run that is not hybrid. Switching a hybrid file
    # to another transport with --set is fine (its web_share then simply does not apply).
    file_kind = flat.get("transport.kind", default_kind)
    file_mistake = "transport.web_share" in flat and file_kind != "hybrid" and kind != "hybrid"
    if file_mistake or ("transport.web_share" in over and kind != "hybrid"):
        raise ConfigError(
            f"transport.web_share applies only to transport.kind = 'hybrid', but the "
            f"transport is {kind!r}; remove it or use the hybrid transport"
        )


def describe_keys() -> list[tuple[str, str, str]]:
    """(key, default, meaning) rows for documentation and ``--help`` text."""
    return [(k.name, repr(k.default), k.doc) for k in SCHEMA]


def key_table(key: Key) -> str:
    """The TOML table a key is written under (``""`` for top-level keys)."""
    return key.name.rpartition(".")[0]


def key_type(key: Key) -> str:
    """The key's value type as ``immodel keys`` shows it."""
    return {
        "int": "integer",
        "float": "number",
        "bool": "boolean",
        "str": "string",
        "choice": "string",
        "latency": "number or table",
        "distribution": "number or table",
        "faults": "list of tables",
        "times": "list of numbers",
        "drain": "number or 'auto'",
        "shares": "table",
        "devices": "table",
    }[key.kind]


def keys_reference() -> list[dict[str, Any]]:
    """Every scenario key of :data:`SCHEMA` as a plain dict (``immodel keys --json``):
    ``key``, ``table``, ``type``, ``default``, ``allowed``, ``meaning``."""
    rows = []
    for key in SCHEMA:
        default = list(key.default) if isinstance(key.default, tuple) else key.default
        rows.append(
            {
                "key": key.name,
                "table": key_table(key),
                "type": key_type(key),
                "default": default,
                "allowed": key.allowed(),
                "meaning": key.doc,
            }
        )
    return rows
