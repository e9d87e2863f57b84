"""immodel.real — the reference model on real sockets (``immodel real``).

A test harness and reference implementation, not a product server: on one machine,
bound to 127.0.0.1, it starts ``server.nodes`` logic processes (the protocol's
:class:`~immodel.protocol.server.ServerNode` over a SQLite store in WAL mode),
``server.access_nodes`` access processes (TLS client connections, forwarding), a fault
proxy between the clients and the access tier (latency, partitions, resets), and a
load generator whose clients are the protocol's sender and receiver on real TLS
connections; it injects process crashes and writes the simulator's records. One module
per role:

* :mod:`~immodel.real.wire` — length-prefixed JSON frames, the protocol values on them;
* :mod:`~immodel.real.store` — the durable store (SQLite, WAL);
* :mod:`~immodel.real.logic_server` — a logic process;
* :mod:`~immodel.real.access_server` — an access process;
* :mod:`~immodel.real.proxy` — the fault proxy (the network between clients and access);
* :mod:`~immodel.real.loadgen` — the plan and the clients;
* :mod:`~immodel.real.rest_backend` — the business backend's REST calls and the access
  node's REST endpoint;
* :mod:`~immodel.real.orchestrator` — refusals, processes, faults, cleanup;
* :mod:`~immodel.real.recorder` — the records and summary of a real run;
* :mod:`~immodel.real.vendor_push` — the phone vendor's offline push service, and the
  users who open the app on its notifications;
* :mod:`~immodel.real.common` — configuration, run clock, counters, start-up handshake.
"""

from immodel.real.orchestrator import MAX_USERS, check_supported, run_real

__all__ = ["MAX_USERS", "check_supported", "run_real"]
