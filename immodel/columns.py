"""The data dictionary: every column of a run's records and of a sweep's results.

This is the one place columns are described. ``immodel columns`` prints it,
``docs/columns.md`` is generated from it (:func:`columns_markdown`; a test keeps the file
up to date), and a test runs a small simulation and fails if any column it produces is
missing here — so a new column cannot ship without its meaning.

Tables:

* ``messages``, ``requests``, ``load``, ``trace`` — the record frames of one run
  (:class:`immodel.sim.model.Result`, and ``*.parquet`` in ``immodel run --out DIR``);
* ``live_messages``, ``live_trace`` — the records of live-broadcast rooms (runs with
  ``workload.live_rooms > 0``);
* ``results`` — a sweep's ``results.parquet``: one row per grid point × replication, the
  grid keys, then every summary metric of the run (also ``summary.json`` of a run).

A name with ``{stage}`` stands for one column per server stage (:data:`STAGES`).
Times are simulated seconds from the start of the run unless the name says otherwise.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from immodel.sim.logic import STAGE_NAMES

#: Server stages that get per-stage columns (``queue_{stage}``, ``utilization_{stage}`` …).
STAGES = (*STAGE_NAMES, "access")


class Column(NamedTuple):
    """One column: its name (``{stage}`` for a family), type, unit and meaning."""

    name: str
    type: str
    unit: str
    meaning: str


class Table(NamedTuple):
    """A table of the dictionary: where it is stored, what one row is, its columns."""

    file: str
    about: str
    columns: tuple[Column, ...]


def _c(name: str, type_: str, unit: str, meaning: str) -> Column:
    return Column(name, type_, unit, meaning)


MESSAGES = Table(
    "messages.parquet",
    "one row per message × recipient; a message never stored still has its rows",
    (
        _c("msg_id", "string", "", "the message's unique id (client-generated, reused by retries)"),
        _c("conversation", "string", "", "1:1 conversation or group id"),
        _c("is_group", "bool", "", "true for a group message"),
        _c("sender", "int", "", "user id of the sender (-1: the admin account, REST API)"),
        _c("recipient", "int", "", "user id of this row's recipient"),
        _c("order_key", "int", "", "server order key (timestamp or group seq); -1 if never stored"),
        _c(
            "stored",
            "bool",
            "",
            "the server stored the message (it is then expected at the recipient)",
        ),
        _c(
            "stored_copies",
            "int",
            "",
            "times it was stored (> 1: a retry the server did not de-duplicate)",
        ),
        _c("t_send", "float", "s", "when the app submitted it"),
        _c("t_stored", "float", "s", "when the server first stored it (NaN: never)"),
        _c("t_first_show", "float", "s", "when the recipient's app first showed it (NaN: never)"),
        _c("latency_ms", "float", "ms", "t_first_show − t_send (NaN: never shown)"),
        _c("attempts", "int", "", "uplink attempts of the sender (1: no retry)"),
        _c("copies", "int", "", "copies shown to the recipient's app (> 1: duplicates)"),
        _c(
            "online_at_store", "bool", "", "the recipient was connected when the message was stored"
        ),
        _c(
            "t_offline_push",
            "float",
            "s",
            "when the vendor's offline notification reached the device (NaN: none)",
        ),
        _c(
            "first_via",
            "string",
            "",
            "how the first copy arrived: push, poll or sync; empty if never shown",
        ),
        _c(
            "repaired_by",
            "string",
            "",
            "what brought the first copy when the first push or poll did not: retransmit, "
            "offline_queue, sync_receipt, sync_gap or sync_reconnect; empty otherwise",
        ),
        _c(
            "recipient_kind",
            "string",
            "",
            "the recipient's transport: push, long_poll or short_poll",
        ),
        _c("send_failed", "bool", "", "the sender's app was told the send failed"),
        _c("failure_reason", "string", "", "why the send failed (empty if it did not)"),
        _c(
            "screening",
            "string",
            "",
            "what content screening did under server.screening_policy: empty (no hit), "
            "blocked, flagged, replaced or sender_only",
        ),
        _c(
            "altered",
            "bool",
            "",
            "the first copy shown to this recipient had been altered on the way "
            "(security.channel = plaintext with security.tamper_prob)",
        ),
        _c(
            "origin",
            "string",
            "",
            "the uplink entry the message took: sdk (a user's app) or rest (the business "
            "backend's REST call as the admin account, sender -1)",
        ),
        _c(
            "device",
            "string",
            "",
            "the recipient's device kind (workload.devices; 'phone' with one device per user); "
            "a row is a (message, recipient device) pair",
        ),
        _c(
            "reachable_after_store",
            "bool",
            "",
            "stored, and the recipient device connected (completed a login) at or after the "
            "first store or was connected at the end of the run; a lost pair with false "
            "waits in the store for the device's next login (lost_awaiting_login)",
        ),
    ),
)

REQUESTS = Table(
    "requests.parquet",
    "one row per request that reached the access layer (heartbeats are counted, not listed)",
    (
        _c("t", "float", "s", "arrival time at the access layer"),
        _c("user", "int", "", "user id of the client (-1: the admin account's REST calls)"),
        _c(
            "kind",
            "category",
            "",
            "send, ack, poll, sync or login; rest (a backend's REST call admitted) or "
            "rest_refused (refused by the rate limit) at the time the access node decided",
        ),
        _c("messages", "int", "", "messages carried (a poll: in its response; 0 is an empty poll)"),
        _c("bytes", "int", "bytes", "size of the request including framing"),
        _c("device", "string", "", "the client's device kind ('phone' with one device per user)"),
    ),
)

LOAD = Table(
    "load.parquet",
    "one row per node of each tier every sample_interval_s",
    (
        _c("t", "float", "s", "sample time"),
        _c("tier", "string", "", "logic (stages, pending-ACK) or access (connections, polls)"),
        _c("node", "int", "", "node id within its tier"),
        _c("up", "bool", "", "the node is running (false while crashed)"),
        _c(
            "queue_{stage}",
            "int",
            "jobs",
            "jobs waiting in the stage's queue (access: the access node's one stage)",
        ),
        _c("busy_{stage}", "int", "workers", "workers of the stage serving a job"),
        _c("held_polls", "int", "", "access: long polls held open by the node"),
        _c("connections", "int", "", "access: open client connections on the node"),
        _c("pending_acks", "int", "", "logic: entries in the node's pending-ACK queues"),
    ),
)

TRACE = Table(
    "trace.parquet",
    "the delivery checker's event log (also what `immodel check` reads from a real system)",
    (
        _c("t", "float", "s", "event time"),
        _c(
            "event",
            "category",
            "",
            "send (app submit), stored (server accepted) or deliver (shown)",
        ),
        _c("msg_id", "string", "", "message id"),
        _c("conversation", "string", "", "1:1 conversation or group id"),
        _c(
            "user",
            "string",
            "",
            "send: the sender; stored and deliver: the recipient. With several devices per "
            "user, the device: the user id for its first device kind, '<user>/<kind>' else",
        ),
        _c("order_key", "float", "", "server order key (NaN on send rows)"),
        _c(
            "digest",
            "int",
            "",
            "digest of the content (send: as written; stored: as the server keeps it, e.g. "
            "replaced by screening; deliver: as shown). A deliver row whose digest differs "
            "from its stored row's was altered on the way; optional for the checker",
        ),
        _c(
            "reachable_after_store",
            "bool",
            "",
            "stored rows: the recipient connected at or after this row's t, or was connected "
            "at the end (false: a lost pair awaits its next login, not a failure); empty on "
            "send and deliver rows; optional for the checker",
        ),
    ),
)

# --- live-broadcast rooms (immodel.sim.live) -------------------------------------------
LIVE_MESSAGES = Table(
    "live_messages.parquet",
    "live rooms only: one row per message a speaker sent to a live room",
    (
        _c("msg_id", "string", "", "the message's id (L<room>-<number>)"),
        _c("room", "int", "", "live room id"),
        _c("priority", "category", "", "high, normal or low (workload.live_priority)"),
        _c("t_send", "float", "s", "when the speaker sent it"),
        _c("t_offer", "float", "s", "when it reached the room's cap (NaN: never)"),
        _c("window", "int", "", "index of the cap's window it fell in (-1: never offered)"),
        _c("accepted", "bool", "", "the cap accepted it (it was then published to viewers)"),
        _c("seq", "int", "", "the room's seq of an accepted message (-1: dropped or never)"),
        _c("t_decided", "float", "s", "when its window was decided (NaN: never offered)"),
        _c("t_told", "float", "s", "dropped: when its sender learnt it (NaN otherwise)"),
    ),
)

LIVE_TRACE = Table(
    "live_trace.parquet",
    "live rooms only: the checker's event log of live traffic, send and deliver rows (no "
    "stored rows: nothing is owed to a live viewer, so nothing can be lost)",
    (
        _c("t", "float", "s", "event time"),
        _c("event", "category", "", "send (speaker) or deliver (shown to viewers)"),
        _c("msg_id", "category", "", "message id (as in live_messages)"),
        _c("conversation", "category", "", "the room (live<room>)"),
        _c(
            "user",
            "category",
            "",
            "send: r<room>-speaker; deliver: r<room>-c<id>, a viewer (per_viewer) or a cohort",
        ),
        _c("order_key", "float", "", "the room's seq (NaN on send rows)"),
        _c("viewers", "int", "", "viewers the row stands for (1 per viewer; a cohort's size)"),
        _c("live", "bool", "", "always true: a live row (immodel check does not expect it)"),
    ),
)

_LAT = "over expected pairs whose recipient was online when the message was stored"
_CATCH = "over expected pairs whose recipient was offline when the message was stored"

RESULTS = Table(
    "results.parquet",
    "a sweep: one row per grid point × replication (a run's summary.json has the metric columns)",
    (
        _c("point", "int", "", "grid point index (last grid key varies fastest)"),
        _c(
            "{grid key}",
            "as the key",
            "",
            "one column per grid key, named by its dotted key; tables and lists as JSON text",
        ),
        _c("replication", "int", "", "replication index at this point"),
        _c("seed", "int", "", "the run's seed (the same per replication at every point)"),
        _c("messages_sent", "int", "", "messages submitted by apps"),
        _c("deliveries_expected", "int", "", "(message, recipient) pairs of stored messages"),
        _c("deliveries", "int", "", "expected pairs shown at least once by the end of the drain"),
        _c("lost", "int", "", "expected pairs not shown by the end of the drain"),
        _c(
            "lost_awaiting_login",
            "int",
            "",
            "lost pairs whose device is offline at the end and has not connected since the "
            "store (the message waits for its next login)",
        ),
        _c("lost_while_reachable", "int", "", "lost − lost_awaiting_login (what check fails on)"),
        _c("send_failures", "int", "", "messages whose sender was told 'failed'"),
        _c("duplicates", "int", "", "copies shown beyond the first"),
        _c(
            "order_violations",
            "int",
            "",
            "deliveries shown after one with a larger order key (per recipient, conversation)",
        ),
        _c("order_violations_group", "int", "", "order_violations in groups"),
        _c("order_violations_1to1", "int", "", "order_violations in 1:1 conversations"),
        _c(
            "stored_order_inversions",
            "int",
            "",
            "messages keyed below one stored strictly earlier in the same conversation",
        ),
        _c(
            "causal_order_violations",
            "int",
            "",
            "messages sent after their sender saw a larger order key in the conversation",
        ),
        _c("latency_mean_ms", "float", "ms", f"mean submit → first show, {_LAT}"),
        _c("latency_p50_ms", "float", "ms", f"median latency, {_LAT}"),
        _c("latency_p95_ms", "float", "ms", f"95th percentile latency, {_LAT}"),
        _c("latency_p99_ms", "float", "ms", f"99th percentile latency, {_LAT}"),
        _c("latency_max_ms", "float", "ms", f"largest latency, {_LAT}"),
        _c("catchup_latency_mean_ms", "float", "ms", f"mean submit → first show, {_CATCH}"),
        _c("catchup_latency_p50_ms", "float", "ms", f"median catch-up latency, {_CATCH}"),
        _c("catchup_latency_p95_ms", "float", "ms", f"95th percentile catch-up latency, {_CATCH}"),
        _c("catchup_latency_p99_ms", "float", "ms", f"99th percentile catch-up latency, {_CATCH}"),
        _c("catchup_latency_max_ms", "float", "ms", f"largest catch-up latency, {_CATCH}"),
        _c(
            "offline_push_latency_mean_ms",
            "float",
            "ms",
            "mean store → offline notification at the device",
        ),
        # --- devices and offline push (immodel.sim.devices, immodel.sim.offline_push)
        _c(
            "read_latency_p50_ms",
            "float",
            "ms",
            "median send → shown on the first of the user's devices, users with no device "
            "connected at store",
        ),
        _c("read_latency_p99_ms", "float", "ms", "99th percentile of the same"),
        _c(
            "delivery_by_device",
            "mapping",
            "",
            "summary.json: per device kind deliveries_expected, deliveries, lost, "
            "latency_p50_ms, latency_p99_ms, requests, sync_items; results.parquet: JSON text",
        ),
        _c("offline_push_sent", "int", "", "notifications handed to the vendor's channel"),
        _c(
            "offline_push_dropped",
            "int",
            "",
            "notifications refused by the vendor's rate limit or lost on its channel",
        ),
        _c("offline_push_refused", "int", "", "notifications over the vendor's rate limit"),
        _c(
            "offline_push_collapsed",
            "int",
            "",
            "messages not notified: their device had an unread notification",
        ),
        _c("push_opens", "int", "", "offline devices opened on a notification"),
        _c("login_backlog", "int", "", "messages in offline queues at logins, summed"),
        _c(
            "login_queue_pushed",
            "int",
            "",
            "of login_backlog, moved to the downlink by the login (not left to the sync page)",
        ),
        _c(
            "requests_total",
            "int",
            "",
            "requests at the access layer, heartbeats included, whole run",
        ),
        _c(
            "requests_{kind}",
            "int",
            "",
            "requests of one kind (send, ack, poll, sync, login, heartbeat), whole run",
        ),
        _c("window_s", "float", "s", "the sending period over which rates are measured"),
        _c(
            "requests_per_s",
            "float",
            "1/s",
            "requests (heartbeats included) per second over the sending period",
        ),
        _c(
            "empty_poll_fraction",
            "float",
            "",
            "share of polls in the sending period whose response was empty",
        ),
        _c("retransmits_uplink", "int", "", "uplink attempts beyond each message's first"),
        _c("retransmits_downlink", "int", "", "pending-ACK retransmits by the server"),
        _c("sync_pulls", "int", "", "sync requests (same as requests_sync)"),
        _c("messages_stored_twice", "int", "", "messages stored more than once"),
        _c("delivery_ratio", "float", "", "deliveries / deliveries_expected"),
        _c(
            "arrival_rate_{stage}",
            "float",
            "1/s",
            "jobs arriving at the stage per second, all nodes, whole run",
        ),
        _c(
            "queue_mean_{stage}",
            "float",
            "jobs",
            "time-average queue length of the stage, summed over nodes",
        ),
        _c("wait_mean_ms_{stage}", "float", "ms", "mean wait in the stage's queue per started job"),
        _c(
            "server_utilization",
            "float",
            "",
            "busy worker time / worker capacity over all stages, sending period",
        ),
        _c(
            "utilization_access",
            "float",
            "",
            "access tier: busy core time / cores of all access nodes, sending period",
        ),
        _c(
            "utilization_logic",
            "float",
            "",
            "logic tier: busy worker time / workers of all stages of all logic nodes, "
            "sending period",
        ),
        _c("sync_bytes", "int", "bytes", "sync requests and pages on the wire, both ways"),
        _c(
            "segments_retransmitted",
            "int",
            "",
            "stream model: segments the transport resent (0 for datagram)",
        ),
        _c("held_polls_peak", "int", "", "most long polls held at once, summed over access nodes"),
        _c(
            "held_poll_memory_peak_bytes",
            "int",
            "bytes",
            "held_polls_peak × server.held_poll_bytes",
        ),
        _c(
            "network_model",
            "string",
            "",
            "stream or datagram (network.model); real for a run of immodel real",
        ),
        # -- immodel real only (null in a simulated run's results: absent from its summary)
        _c(
            "cpu_s_by_process",
            "dict",
            "s",
            "immodel real: CPU time of each process (logic<i>, access<i>, proxy0, "
            "business0 and vendor0 if any, loadgen)",
        ),
        _c("cpu_s_logic", "float", "s", "immodel real: CPU time of the logic processes"),
        _c("cpu_s_access", "float", "s", "immodel real: CPU time of the access processes"),
        _c("cpu_s_loadgen", "float", "s", "immodel real: CPU time of the load generator"),
        _c(
            "real_setup_s",
            "float",
            "s",
            "immodel real: wall time until every client was logged in",
        ),
        _c("real_processes", "int", "", "immodel real: server processes started"),
        # -- immodel real: the harness's own timing (the load generator's event loop)
        _c(
            "loadgen_lag_p99_ms",
            "float",
            "ms",
            "immodel real: p99 of how late the load generator's event loop woke a 10 ms timer",
        ),
        _c(
            "loadgen_lag_max_ms",
            "float",
            "ms",
            "immodel real: the latest the load generator's event loop woke a 10 ms timer",
        ),
        _c(
            "poll_return_p50_ms",
            "float",
            "ms",
            "immodel real: median time from an access node's poll answer with messages to "
            "its receipt by the client",
        ),
        _c(
            "poll_return_p99_ms",
            "float",
            "ms",
            "immodel real: p99 of the time from an access node's poll answer with messages "
            "to its receipt by the client",
        ),
        _c(
            "routed_to_down_node",
            "int",
            "",
            "deliveries fanned out to a crashed logic node's users before failover (kept in "
            "the store's offline queue)",
        ),
        _c("connection_breaks", "int", "", "silent connection breaks (break_rate_per_hour)"),
        _c(
            "transport_gave_up",
            "int",
            "",
            "connections the stream transport closed after 15 retransmissions of a segment",
        ),
        _c(
            "server_utilization_max_stage",
            "float",
            "",
            "utilization of the busiest stage, sending period",
        ),
        _c(
            "utilization_{stage}",
            "float",
            "",
            "utilization of one stage (busiest node), sending period",
        ),
        _c(
            "heartbeats",
            "int",
            "",
            "heartbeats on push connections, whole run (from connected time)",
        ),
        _c("heartbeats_window", "int", "", "heartbeats within the sending period"),
        # --- idle pollers in bulk (transport.idle_poll_mode, immodel.sim.idle_poll) ---
        _c(
            "idle_polls",
            "int",
            "",
            "empty polls of idle short pollers in cohorts (aggregated mode), counted not "
            "listed; in requests_total and requests_poll; whole run",
        ),
        _c(
            "idle_polls_window",
            "int",
            "",
            "idle_polls reaching the access layer within the sending period",
        ),
        _c("idle_poll_wakes", "int", "", "times a cohort member became an individual poller"),
        _c("idle_poll_members_peak", "int", "", "most short pollers in cohorts at once"),
        # --- end idle pollers ---
        _c("bytes_up", "int", "bytes", "bytes sent client → server"),
        _c("bytes_down", "int", "bytes", "bytes sent server → client"),
        _c("packets_lost_up", "int", "", "packets lost client → server"),
        _c("packets_lost_down", "int", "", "packets lost server → client"),
        _c("users", "int", "", "users simulated"),
        _c("horizon_s", "float", "s", "duration_s + the drain used: the simulated time"),
        _c("offline_pushes", "int", "", "vendor offline notifications sent"),
        _c("offline_pushes_lost", "int", "", "vendor offline notifications lost"),
        _c("logins", "int", "", "successful logins (start, reconnects)"),
        _c(
            "hijacked_connections",
            "int",
            "",
            "connects that reached an attacker's address from a hijacked local DNS answer "
            "(encrypted: the handshake fails and the client retries through HTTPDNS)",
        ),
        _c("dns_lookups", "int", "", "local DNS lookups (cache misses; security.dns)"),
        _c("httpdns_requests", "int", "", "HTTPDNS requests (security.dns = httpdns or a retry)"),
        _c(
            "tamper_detected",
            "int",
            "",
            "encrypted channel: frames an on-path attacker altered, detected; each reset its "
            "connection and the message was repaired",
        ),
        _c(
            "tampered_deliveries",
            "int",
            "",
            "plaintext channel: altered copies an app showed (first copies and later ones)",
        ),
        _c(
            "exposed_messages",
            "int",
            "",
            "messages sent or received on plaintext connections through a hijacked address "
            "(read by the attacker)",
        ),
        _c(
            "forged_rejected",
            "int",
            "",
            "frames (send, poll, sync) injected without a session, refused at the access tier",
        ),
        _c(
            "logins_rejected",
            "int",
            "",
            "logins refused at the auth stage (expired, forged, tampered or another user's "
            "UserSig)",
        ),
        _c(
            "logins_rejected_by_reason",
            "mapping",
            "",
            "summary.json: logins_rejected per auth reason (auth_expired, auth_bad_signature, "
            "auth_malformed, auth_wrong_app, auth_wrong_identifier); results.parquet holds it "
            "as logins_rejected_{reason} columns",
        ),
        _c(
            "logins_rejected_{reason}",
            "int",
            "",
            "results.parquet: logins_rejected_by_reason flattened, one column per reason",
        ),
        _c(
            "relogins",
            "int",
            "",
            "fresh UserSigs the SDK fetched and logged in again with (expired at login or "
            "mid-session)",
        ),
        _c(
            "replays_accepted",
            "int",
            "",
            "replayed UserSigs accepted (a bearer token works from any device until it expires)",
        ),
        _c(
            "hostile_logins_accepted",
            "int",
            "",
            "attacker logins accepted (replays of unexpired tokens; nothing else should pass)",
        ),
        _c("screening_blocked", "int", "", "screening hits blocked (policy block)"),
        _c("screening_flagged", "int", "", "screening hits delivered with a flag"),
        _c("screening_replaced", "int", "", "screening hits delivered with the text replaced"),
        _c("screening_sender_only", "int", "", "screening hits shown to their sender only"),
        _c(
            "connect_latency_p50_ms",
            "float",
            "ms",
            "median time from a connect's start to its login reply (DNS, handshake, login, "
            "retries and token fetches included; null when no client connected)",
        ),
        _c(
            "connect_latency_p99_ms",
            "float",
            "ms",
            "99th percentile of that connect latency",
        ),
        _c("login_failures", "int", "", "login attempts that failed"),
        _c("crash_pending_lost", "int", "", "pending-ACK entries lost in server crashes"),
        _c(
            "stage_jobs_lost", "int", "", "stage jobs (queued or in service) lost in server crashes"
        ),
        _c("dedup_hits", "int", "", "retries the server recognised as already stored"),
        _c(
            "dedup_in_progress_drops",
            "int",
            "",
            "retries dropped because the first copy was still being processed",
        ),
        _c(
            "rejections",
            "int",
            "",
            "sends the server rejected (callback, screening, mute, blacklist, friendship)",
        ),
        _c("store_failures", "int", "", "store attempts that failed (store_failure fault)"),
        _c("sync_pages", "int", "", "sync pages served"),
        _c(
            "seqs_burnt",
            "int",
            "",
            "group seqs burnt by failed writes (server.seq_burn_prob): gaps no message fills",
        ),
        _c("liveness_drops", "int", "", "push connections the server dropped for silence"),
        _c(
            "recovery_time_s",
            "float",
            "s",
            "crash → last affected pair shown (None without crash faults)",
        ),
        _c(
            "reconnect_time_s",
            "float",
            "s",
            "crash → fault over and the last cut-off user logged in again",
        ),
        _c("recovery_pairs", "int", "", "expected pairs a crash interrupted"),
        _c("recovered_via_sync", "int", "", "affected pairs whose first copy came by sync"),
        _c(
            "recovered_via_push", "int", "", "affected pairs whose first copy came pushed or polled"
        ),
        _c("recovery_undelivered", "int", "", "affected pairs never shown (also in lost)"),
        _c(
            "extra_requests",
            "int",
            "",
            "requests (without heartbeats) minus the same run without its faults",
        ),
        _c(
            "extra_requests_{kind}",
            "int",
            "",
            "extra requests of one kind (send, ack, poll, sync, login)",
        ),
        _c("extra_bytes_up", "int", "bytes", "bytes up minus the same run without its faults"),
        _c("extra_bytes_down", "int", "bytes", "bytes down minus the same run without its faults"),
        _c("extra_bytes", "int", "bytes", "extra_bytes_up + extra_bytes_down"),
        # backend senders over the REST API (immodel.sim.backend)
        _c("rest_calls", "int", "", "REST calls the server accepted (within its rate limit)"),
        _c("rest_refused", "int", "", "REST calls refused by the rate limit (with a retry-after)"),
        _c("rest_retries", "int", "", "REST call attempts after the first (refused or timed out)"),
        _c(
            "rest_gave_up",
            "int",
            "",
            "REST calls given up after workload.rest_max_retries refused retries (send failures)",
        ),
        _c("rest_calls_offered", "int", "", "REST calls the backend started (first attempts)"),
        _c("rest_messages", "int", "", "messages sent through the REST API"),
        _c(
            "rest_calls_max_per_s",
            "int",
            "",
            "most REST calls accepted in one whole second of the server's clock",
        ),
        _c("rest_latency_p50_ms", "float", "ms", f"median latency of REST messages, {_LAT}"),
        _c(
            "rest_latency_p99_ms",
            "float",
            "ms",
            f"99th percentile latency of REST messages, {_LAT}",
        ),
        _c(
            "user_latency_p50_ms", "float", "ms", f"median latency of users' (SDK) messages, {_LAT}"
        ),
        _c(
            "user_latency_p99_ms",
            "float",
            "ms",
            f"99th percentile latency of users' (SDK) messages, {_LAT}",
        ),
        _c("drain_s_used", "float", "s", "the drain simulated after the sending period"),
        _c("drain_auto", "bool", "", "the drain was drain_s = 'auto' (derived from the scenario)"),
        _c(
            "drain_s_required",
            "float",
            "s",
            "the drain the scenario needs (immodel.sim.faults.required_drain_s)",
        ),
        _c("live_rooms", "int", "", "live rooms simulated (workload.live_rooms)"),
        _c("live_messages_offered", "int", "", "messages speakers sent to live rooms"),
        _c("live_messages_accepted", "int", "", "live messages the rooms' cap accepted"),
        _c("live_messages_dropped", "int", "", "live messages the cap dropped (sender told)"),
        _c(
            "live_offered_by_priority",
            "mapping",
            "",
            "summary.json: live_messages_offered per priority (high, normal, low); "
            "results.parquet holds it as live_offered_{priority} columns",
        ),
        _c(
            "live_dropped_by_priority",
            "mapping",
            "",
            "summary.json: live_messages_dropped per priority; results.parquet holds it as "
            "live_dropped_{priority} columns",
        ),
        _c("live_offered_{priority}", "int", "", "results.parquet: offered live messages"),
        _c("live_dropped_{priority}", "int", "", "results.parquet: dropped live messages"),
        _c("live_deliveries", "int", "", "viewer-deliveries of live messages"),
        _c(
            "live_missed",
            "int",
            "",
            "viewer-deliveries owed to present viewers and never shown (left first, out of "
            "the recent buffer, or the run ended)",
        ),
        _c("live_latency_p50_ms", "float", "ms", "median send → shown over viewer-deliveries"),
        _c("live_latency_p99_ms", "float", "ms", "99th percentile of that live latency"),
        _c("live_viewers_joined", "int", "", "viewers who joined a live room during the run"),
        _c("live_viewers_left", "int", "", "viewers who left a live room during the run"),
        _c("sim_events", "int", "", "simulation events processed"),
        _c(
            "wall_s",
            "float",
            "s",
            "wall-clock time of the run (the only field that differs between equal runs)",
        ),
    ),
)

#: Every table of the dictionary by name.
TABLES: dict[str, Table] = {
    "messages": MESSAGES,
    "requests": REQUESTS,
    "load": LOAD,
    "trace": TRACE,
    "live_messages": LIVE_MESSAGES,
    "live_trace": LIVE_TRACE,
    "results": RESULTS,
}

_FAMILIES = {
    "{stage}": "(?:" + "|".join(STAGES) + ")",
    "{kind}": "(?:send|ack|poll|sync|login|heartbeat)",
    "{reason}": "(?:auth_malformed|auth_bad_signature|auth_wrong_app|auth_wrong_identifier"
    "|auth_expired)",
    "{priority}": "(?:high|normal|low)",
}


def undocumented(table: str, names: list[str] | tuple[str, ...]) -> list[str]:
    """The ``names`` that no column of ``table`` describes. In ``results``, a dotted
    scenario key is a grid column (``{grid key}``)."""
    patterns = []
    for column in TABLES[table].columns:
        if column.name == "{grid key}":
            continue
        regex = re.escape(column.name)
        for token, alternatives in _FAMILIES.items():
            regex = regex.replace(re.escape(token), alternatives)
        patterns.append(re.compile(regex))
    grid_keys: set[str] = set()
    if table == "results":
        from immodel.scenario import KEYS

        grid_keys = set(KEYS)
    return [n for n in names if n not in grid_keys and not any(p.fullmatch(n) for p in patterns)]


def columns_markdown() -> str:
    """``docs/columns.md``: every table as a Markdown table (generated; do not edit)."""
    lines = [
        "# Columns of the records and results",
        "",
        "Generated from `immodel/columns.py` by `immodel columns` (do not edit by hand; "
        "`tests/test_columns.py` fails when this file is out of date).",
        "",
        "Times are simulated seconds from the start of the run unless the name says "
        "otherwise. A name with `{stage}` stands for one column per server stage ("
        + ", ".join(f"`{s}`" for s in STAGES)
        + "); `{kind}` for one per request kind; `{reason}` for one per auth reason; "
        "`{priority}` for one per live priority (high, normal, low).",
        "",
    ]
    for name, table in TABLES.items():
        lines += [
            f"## {name} (`{table.file}`)",
            "",
            table.about[0].upper() + table.about[1:] + ".",
            "",
        ]
        lines += ["| column | type | unit | meaning |", "|---|---|---|---|"]
        for c in table.columns:
            meaning = c.meaning.replace("|", "\\|")
            lines.append(f"| `{c.name}` | {c.type} | {c.unit} | {meaning} |")
        lines.append("")
    return "\n".join(lines)


__all__ = ["STAGES", "TABLES", "Column", "Table", "columns_markdown", "undocumented"]
