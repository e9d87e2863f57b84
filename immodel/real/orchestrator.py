"""``immodel real``: start the servers, run the load, inject the faults, collect the records.

One run, in order (:func:`run_real`):

1. **Refuse** what the harness does not implement or cannot hold on one machine
   (:func:`check_supported`: one :class:`~immodel.errors.UserError` naming the key and
   the limit, before anything starts).
2. **Set up** a private folder: a CA and a certificate for ``127.0.0.1`` made now
   (``trustme``), the SQLite store with the scenario's groups, a configuration file.
3. **Start** ``server.nodes`` logic processes, then ``server.access_nodes`` access
   processes (``python -m immodel.real.logic_server`` / ``access_server``), each in its
   own process group, each on a port of 127.0.0.1 the OS chose; wait for each one's
   ``READY`` line (and for the access nodes to reach every logic node); the fault proxy
   (:mod:`immodel.real.proxy`) starts with the logic processes and is told each access
   node's ports once it is up. When a device can be offline, the phone vendor's push
   service starts first (:mod:`immodel.real.vendor_push`), with the load generator's
   listener for its notifications.
4. **Connect** the users online at the start as TLS clients through the proxy
   (:mod:`immodel.real.loadgen`), then start the clock of the sending period.
5. **Play** the plan for ``duration_s`` and wait ``drain_s`` (wall-clock); faults fire
   on time: ``server_crash`` SIGKILLs logic process ``node`` and starts it again on the
   same port after ``down_s``; ``gateway_crash`` SIGKILLs access process ``node`` (its
   clients reconnect to the others) and starts it again after ``down_s``; ``partition``
   makes the proxy hold the chosen users' bytes until it heals; ``client_crash`` has it
   reset the chosen users' connections, and their apps reconnect at once. Load samples
   (``up``, ``connections``, ``pending_acks``) every ``sample_interval_s``.
6. **Stop** the clients, read every process's CPU time, stop the processes (SIGTERM,
   then SIGKILL after 3 s), read the store, build the records and the summary
   (:mod:`immodel.real.recorder`).

Processes are cleaned up on every exit path: the ``finally`` of the run, an ``atexit``
hook and SIGTERM/SIGHUP handlers kill every process group still registered; a server
also stops by itself when its stdin (a pipe from this process) closes. Everything binds
to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import math
import os
import shutil
import signal
import ssl
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from immodel.errors import UserError
from immodel.real import vendor_push
from immodel.real.common import read_gauge, read_stats, run_sync
from immodel.sim.offline_push import push_metrics

#: The most users one run may have: a few thousand TLS clients and their tasks in one
#: event loop is what one machine's loopback holds with timing still meaningful.
MAX_USERS = 2000
#: The most processes per tier.
MAX_NODES = 8
#: The longest run (sending period + drain), wall-clock seconds.
MAX_RUN_S = 900.0
#: How long a process may take to print READY.
START_TIMEOUT_S = 30.0

SDKAPPID = 1400000000
USERSIG_KEY = "immodel-real-harness-app-secret-key"

# -- refusals ----------------------------------------------------------------------------
# Why loss is refused: TCP turns a lost segment into a retransmission after the sender's
# RTO (≥ 200 ms on Linux, doubling), which a proxy of byte streams cannot drop without
# breaking the stream; modelling it as a delay would be the simulator's model, not a
# measurement.
_NO_LOSS = "packet loss is not implemented by the fault proxy: it forwards byte streams"
_DEFAULT_ONLY = (
    # key, what the harness supports (the refusal names both)
    ("workload.live_rooms", 0, "0 (live rooms are not implemented)"),
    ("network.uplink_loss", 0.0, "0 (" + _NO_LOSS + ")"),
    ("network.downlink_loss", 0.0, "0 (" + _NO_LOSS + ")"),
    ("network.burst_enter_prob", 0.0, "0 (" + _NO_LOSS + ")"),
    ("network.break_rate_per_hour", 0.0, "0 (silent connection breaks are not implemented)"),
    ("security.dns", "none", "none (name resolution is not modelled by the harness)"),
    ("security.channel", "encrypted", "encrypted (the harness always uses TLS)"),
    ("security.tamper_prob", 0.0, "0 (on-path tampering is not implemented)"),
    ("security.forged_per_s", 0.0, "0 (hostile logins are not implemented)"),
    ("security.attack_logins_per_s", 0.0, "0 (hostile logins are not implemented)"),
)
_FAULTS = (
    "server_crash",
    "gateway_crash",
    "partition",
    "client_crash",
    "store_failure",
    "slow_server",
    "clock_skew",
)
#: Faults that change what a logic process does for a while (a command to it).
_NODE_FAULTS = {"store_failure": "prob", "slow_server": "extra_ms", "clock_skew": "skew_ms"}


def check_supported(sc) -> None:
    """Raise a :class:`UserError` naming the first key the harness cannot run, and what
    it supports (one ``error:`` line at the command line)."""
    users = sc["workload.users"]
    if users > MAX_USERS:
        raise UserError(
            f"workload.users = {users} is more than immodel real runs on one machine "
            f"(at most {MAX_USERS} users); use `immodel run` for larger scenarios"
        )
    for key in ("server.nodes", "server.access_nodes"):
        if sc[key] > MAX_NODES:
            raise UserError(
                f"{key} = {sc[key]} is more than immodel real starts on one machine "
                f"(at most {MAX_NODES} processes per tier)"
            )
    for key, default, allowed in _DEFAULT_ONLY:
        value = sc[key]
        same = tuple(value) == tuple(default) if isinstance(default, tuple) else value == default
        if not same:
            raise UserError(
                f"{key} = {json.dumps(value, default=list)} is not supported by immodel real: "
                f"allowed {allowed}"
            )
    _check_rest(sc)
    horizon = sc["duration_s"] + sc["drain_s"]
    if horizon > MAX_RUN_S:
        raise UserError(
            f"duration_s + drain_s = {horizon:g} s is longer than immodel real runs "
            f"(at most {MAX_RUN_S:g} s of wall-clock time)"
        )
    for i, fault in enumerate(sc["faults"]):
        kind = fault["kind"]
        if kind == "loss_burst":
            raise UserError(
                f"faults[{i}].kind = 'loss_burst' is not supported by immodel real: "
                f"{_NO_LOSS} (allowed {', '.join(_FAULTS)})"
            )
        if kind not in _FAULTS:
            raise UserError(
                f"faults[{i}].kind = '{kind}' is not supported by immodel real: "
                f"allowed {', '.join(_FAULTS)}"
            )
        if kind == "partition":
            continue
        if kind == "client_crash":
            continue
        if kind == "store_failure" and sc["server.seq_burn_prob"] > 0:
            raise UserError(
                f"server.seq_burn_prob = {sc['server.seq_burn_prob']:g} with faults[{i}].kind "
                "= 'store_failure' is not supported by immodel real: its store burns no "
                "group seqs (allowed 0)"
            )
        tier_logic = kind == "server_crash" or kind in _NODE_FAULTS
        nodes = sc["server.nodes"] if tier_logic else sc["server.access_nodes"]
        node = int(fault.get("node", 0))
        if kind == "gateway_crash" and node < 0:
            raise UserError(
                f"faults[{i}]: gateway_crash without 'node' (a share of connections) is not "
                "supported by immodel real: allowed a node index"
            )
        if node >= nodes:
            tier = "server.nodes" if tier_logic else "server.access_nodes"
            raise UserError(
                f"faults[{i}].node = {node} does not exist: allowed 0 … {nodes - 1} "
                f"({tier} = {nodes})"
            )
        if kind == "gateway_crash" and nodes < 2:
            raise UserError(
                f"faults[{i}]: gateway_crash needs server.access_nodes ≥ 2 in immodel real "
                "(its clients reconnect to another access node)"
            )


def _check_rest(sc) -> None:
    """REST senders (:mod:`immodel.real.rest_backend`) run with one access node and one
    device per user; refuse the rest, naming the key."""
    from immodel.real.rest_backend import rest_enabled

    if not rest_enabled(sc):
        return
    if sc["server.access_nodes"] != 1:
        raise UserError(
            f"server.access_nodes = {sc['server.access_nodes']} with REST senders "
            "(workload.rest_rate_per_s or workload.rest_broadcasts) is not supported by "
            "immodel real: the per-app rate limit is one counter, kept on the access node "
            "(allowed 1)"
        )
    if sc["workload.devices"]:
        raise UserError(
            f"workload.devices = {json.dumps(sc['workload.devices'], default=list)} with "
            "REST senders is not supported by immodel real: admin messages to several "
            "devices per user are not implemented (allowed: the default, one device)"
        )


class Terminated(KeyboardInterrupt):
    """The run was stopped by SIGTERM or SIGHUP (``signum``); unwinds as Ctrl-C does."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


# -- processes ---------------------------------------------------------------------------
_LIVE_GROUPS: set[int] = set()  # process groups to kill on any exit


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    _LIVE_GROUPS.discard(pgid)


def _kill_all() -> None:
    for pgid in list(_LIVE_GROUPS):
        _kill_group(pgid)


atexit.register(_kill_all)


class ServerProcess:
    """One server process (logic or access) and the CPU time of its earlier instances."""

    def __init__(self, role: str, index: int, config: Path, log_dir: Path) -> None:
        self.role = role
        self.index = index
        self.config = config
        self.log = log_dir / f"{role}{index}.log"
        self.port = 0
        self.http_port = 0
        self.ports: list[int] = []  # every port of its READY line (the proxy's: 2 per node)
        self.ready = False  # between READY and the next kill or stop
        self.proc: asyncio.subprocess.Process | None = None
        # CPU seconds counted: only the run's (from mark_cpu, or a restart's READY, to its
        # kill or stop): a process's start-up (the interpreter, its imports) is not load
        self.cpu_s_before = 0.0  # of instances already killed
        self.cpu_mark = 0.0  # the running instance's CPU when counting began
        self.pids: list[int] = []

    @property
    def name(self) -> str:
        return f"{self.role}{self.index}"

    @property
    def up(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        module = (
            "immodel.real."
            + {
                "logic": "logic_server",
                "access": "access_server",
                "proxy": "proxy",
                "business": "business",
                "vendor": "vendor_push",
            }[self.role]
        )
        args = [sys.executable, "-m", module, str(self.config), str(self.index)]
        if self.role == "logic" and self.port:
            args.append(str(self.port))  # a restart: the same port
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        with open(self.log, "ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                env=env,
                start_new_session=True,  # its own process group: killed as one
            )
        _LIVE_GROUPS.add(self.proc.pid)
        self.pids.append(self.proc.pid)
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), START_TIMEOUT_S)
        except TimeoutError:
            line = b""
        text = line.decode(errors="replace").split()
        if len(text) < 2 or text[0] != "READY":
            self.kill()
            tail = self.log.read_text(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"{self.name} did not start: {' | '.join(tail) or 'no output'}")
        self.port = int(text[1])
        self.ports = [int(x) for x in text[1:]]
        self.mark_cpu()
        self.http_port = int(text[2]) if len(text) > 2 else 0  # access: HTTP polling
        self.ready = True

    async def command(self, command: dict) -> None:
        """One command line on the process's stdin (the proxy's faults), and wait until
        the process says it is in force (``OK <op>``)."""
        if not self.up:
            return
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), START_TIMEOUT_S)
        except TimeoutError:
            line = b""
        if line.split()[:1] != [b"OK"]:
            raise RuntimeError(f"{self.name} did not apply {command['op']}: {line!r}")

    def _cpu_now(self) -> float:
        from immodel.real.recorder import proc_cpu_s

        cpu = proc_cpu_s(self.proc.pid) if self.up else math.nan
        return 0.0 if math.isnan(cpu) else cpu

    def mark_cpu(self) -> None:
        """Count this instance's CPU from now on (the sending period starts)."""
        self.cpu_mark = self._cpu_now()

    def cpu_s(self) -> float:
        """CPU seconds of the run so far, killed instances included."""
        now = self._cpu_now() if self.up else self.cpu_mark
        return self.cpu_s_before + max(0.0, now - self.cpu_mark)

    def _bank_cpu(self) -> None:
        if self.up:
            self.cpu_s_before += max(0.0, self._cpu_now() - self.cpu_mark)
            self.cpu_mark = 0.0

    def kill(self) -> None:
        """SIGKILL (a crash): its CPU time so far is kept."""
        self.ready = False
        if self.proc is None:
            return
        self._bank_cpu()
        _kill_group(self.proc.pid)

    async def stop(self) -> None:
        """A clean stop: SIGTERM (it flushes its counters), SIGKILL after 3 s."""
        self.ready = False
        if not self.up:
            return
        self._bank_cpu()
        with contextlib.suppress(ProcessLookupError):
            self.proc.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 3.0)
        _kill_group(self.proc.pid)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 3.0)

    async def wait_gone(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 3.0)


def _make_tls(folder: Path) -> tuple[str, str, ssl.SSLContext]:
    """A CA and a certificate for 127.0.0.1 made now; returns (cert, key, client context)."""
    try:
        import trustme
    except ImportError:
        raise UserError(
            "immodel real needs the 'real' extra (trustme, aiohttp): pip install 'immodel[real]'"
        ) from None
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    cert.private_key_pem.write_to_path(str(key_path))
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(str(cert_path), append=True)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(client)
    return str(cert_path), str(key_path), client


# -- the run -----------------------------------------------------------------------------
def run_real(scenario, *, keep_dir: str | None = None) -> Any:
    """Run ``scenario`` on real processes and sockets; returns a
    :class:`~immodel.sim.model.Result` (same records and summary keys as :func:`immodel.run`).

    ``drain_s = "auto"`` is resolved as for a simulated run. ``keep_dir``: keep the
    private folder (store, logs, certificates) there instead of deleting it.
    """
    from immodel.sim.model import resolve_drain

    scenario, auto, required = resolve_drain(scenario)
    check_supported(scenario)
    folder = Path(keep_dir) if keep_dir else Path(tempfile.mkdtemp(prefix="immodel-real-"))
    folder.mkdir(parents=True, exist_ok=True)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        # (a run from a notebook's helper thread relies on atexit and the servers'
        # closed stdin instead: signal handlers belong to the main thread)
        previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}

    def on_signal(signum, _frame):
        _kill_all()
        raise Terminated(signum)  # unwinds like Ctrl-C: the loop cancels its tasks

    for s in previous:
        signal.signal(s, on_signal)
    try:
        result = run_sync(_run(scenario, folder))
    finally:
        _kill_all()
        for s, handler in previous.items():
            signal.signal(s, handler)
        if not keep_dir:
            shutil.rmtree(folder, ignore_errors=True)
    result.summary["drain_s_used"] = float(scenario["drain_s"])
    result.summary["drain_auto"] = bool(auto)
    result.summary["drain_s_required"] = required
    return result


async def _run(sc, folder: Path):
    from immodel.analysis.rest import rest_latency_metrics
    from immodel.real import store as store_mod
    from immodel.real.loadgen import LoadGen, make_plan
    from immodel.real.recorder import build_result
    from immodel.sim.rng import Streams

    wall0 = time.perf_counter()
    loop = asyncio.get_running_loop()
    t0 = loop.time()  # the run clock's origin (CLOCK_MONOTONIC, shared by the processes)
    plan = make_plan(sc)
    cert, key, client_ctx = _make_tls(folder)
    db = folder / "store.sqlite"
    members = plan.groups
    if plan.devices is not None:  # the store's memberships are the devices' (sync reads them)
        members = {g: [e for m in ms for e in plan.devices.of[m]] for g, ms in members.items()}
    from immodel.real.rest_backend import RestBackend, make_rest_plan

    rest_plan = make_rest_plan(sc)
    if sc["workload.rest_broadcasts"]:  # every user is in the admin's broadcast group
        members = {**members, "broadcast": list(range(sc["workload.users"]))}
    store_mod.create(str(db), members)
    cfg: dict[str, Any] = {
        "t0": t0,
        "dir": str(folder),
        "db": str(db),
        "cert": cert,
        "key": key,
        "groups": members if sc["workload.rest_broadcasts"] else plan.groups,
        "sdkappid": SDKAPPID,
        "usersig_key": USERSIG_KEY,
        "scenario": json.loads(json.dumps(sc.values, default=list)),
        "logic_ports": [],
        "access_ports": [None] * sc["server.access_nodes"],  # told the proxy once up
    }
    config = folder / "config.json"
    logic = [ServerProcess("logic", i, config, folder) for i in range(sc["server.nodes"])]
    access = [ServerProcess("access", i, config, folder) for i in range(sc["server.access_nodes"])]
    proxy = ServerProcess("proxy", 0, config, folder)
    # the customer's backend that the before-send callback calls (only when enabled)
    business = (
        [ServerProcess("business", 0, config, folder)]
        if sc["server.callback_enabled"] or sc["server.screening_enabled"]
        else []
    )
    # the phone vendor's push service and the devices' side of it (only when a device
    # can be offline: immodel.real.vendor_push)
    vendor = [ServerProcess("vendor", 0, config, folder)] if vendor_push.needed(sc) else []
    pushes = vendor_push.DevicePushes(sc, lambda: loop.time() - t0) if vendor else None
    gen = None
    rest = None
    fault_log: list[dict] = []
    load_rows: list[dict] = []
    tasks: list[asyncio.Task] = []
    try:
        config.write_text(json.dumps(cfg))
        if pushes is not None:  # before the logic processes: they read the vendor's port
            cfg["device_push_port"] = await pushes.start()
            config.write_text(json.dumps(cfg))
            await vendor[0].start()
            cfg["vendor_port"] = vendor[0].port
            config.write_text(json.dumps(cfg))
        for p in business:  # first: the logic processes read its port at start
            await p.start()
            cfg["business_port"] = p.port
            config.write_text(json.dumps(cfg))
        # the proxy starts with the logic tier (it needs no ports to listen) and learns
        # the access nodes' ports when they are up
        await asyncio.gather(*(p.start() for p in logic), proxy.start())
        cfg["logic_ports"] = [p.port for p in logic]
        config.write_text(json.dumps(cfg))
        await asyncio.gather(*(p.start() for p in access))
        for p in access:
            await proxy.command({"op": "upstream", "node": p.index, "ports": [p.port, p.http_port]})

        def live_access() -> list[tuple[int, int, int]]:
            # the clients connect to the proxy's ports of the access nodes that are up
            return [
                (p.index, proxy.ports[2 * p.index], proxy.ports[2 * p.index + 1])
                for p in access
                if p.ready and p.up
            ]

        gen = LoadGen(sc, cfg, client_ctx, live_access)
        # the business backend calls the access nodes' HTTPS ports directly: its link is
        # workload.rest_latency_ms, not the users' network of the proxy
        rest = RestBackend(
            gen, client_ctx, lambda: [(p.index, p.http_port) for p in access if p.ready and p.up]
        )
        if pushes is not None:
            pushes.attach(gen, plan.streams)
            gen.pushes = pushes
        await gen.connect_all(plan.online)
        # the logic servers count their frames from here on, as their CPU is counted
        await asyncio.gather(*(p.command({"op": "mark"}) for p in logic))
        t_start = gen.t_start = gen.clock()
        # the UserSigs' clock starts with the sending period (a restarted access node
        # reads it from the configuration)
        cfg["t_start"] = t_start
        config.write_text(json.dumps(cfg))
        for p in access:
            await p.command({"op": "start", "t": t_start})
        for p in (*logic, *access, proxy, *business, *vendor):
            p.mark_cpu()
        cpu0 = time.process_time()
        setup_s = time.perf_counter() - wall0
        horizon = sc["duration_s"] + sc["drain_s"]

        fault_rng = Streams(sc["seed"])["faults"].generator  # which users a fault picks

        async def fault(f: dict) -> None:
            await asyncio.sleep(max(0.0, t_start + f["at_s"] - gen.clock()))
            if f["kind"] == "partition":
                users = list(range(sc["workload.users"]))
                cut = [
                    u
                    for u, x in zip(users, fault_rng.random(len(users)), strict=True)
                    if x < f["share"]
                ]
                now = gen.clock()
                fault_log.append(
                    {
                        "kind": "partition",
                        "at_s": now,
                        "end_s": now + f["down_s"],
                        "node": None,
                        "users": tuple(cut),
                        "online": (),
                    }
                )
                heal = gen.loop.time() + f["down_s"]
                await proxy.command(
                    {"op": "partition", "users": cut, "until": heal, "direction": f["direction"]}
                )
                return
            if f["kind"] == "client_crash":
                # the simulator's choice: each online user with probability share
                online = sorted(u for u, c in gen.clients.items() if c.online)
                crashed = [
                    u
                    for u, x in zip(online, fault_rng.random(len(online)), strict=True)
                    if x < f["share"]
                ]
                now = gen.clock()
                fault_log.append(
                    {
                        "kind": "client_crash",
                        "at_s": now,
                        "end_s": now,
                        "node": None,
                        "users": tuple(crashed),
                        "online": tuple(online),
                    }
                )
                # the apps die and start again at once (marked before any reset reaches
                # them, or they would reconnect with backoff), and the access node sees
                # their connections reset
                for u in crashed:
                    gen.clients[u].crash(f["keep_local_state"])
                await proxy.command({"op": "reset", "users": crashed})
                return
            node = int(f.get("node", 0))
            if f["kind"] in _NODE_FAULTS:
                # the node's own behaviour changes until the fault ends (run clock)
                value = f[_NODE_FAULTS[f["kind"]]]
                until = t_start + f["at_s"] + f.get("down_s", math.inf)
                await logic[node].command(
                    {"op": "fault", "kind": f["kind"], "value": value, "until": until}
                )
                return
            target = logic[node] if f["kind"] == "server_crash" else access[node]
            now = gen.clock()
            cut = ()
            if f["kind"] == "gateway_crash":
                cut = tuple(
                    sorted(u for u, c in gen.clients.items() if c.access == node and c.online)
                )
            online = tuple(sorted(u for u, c in gen.clients.items() if c.online))
            fault_log.append(
                {
                    "kind": f["kind"],
                    "at_s": now,
                    "end_s": now + f["down_s"],
                    "node": node,
                    "users": cut,
                    "online": online,
                }
            )
            target.kill()
            if target.role == "access":
                await proxy.command({"op": "upstream", "node": node, "ports": None})
            await target.wait_gone()
            await asyncio.sleep(f["down_s"])
            await target.start()
            if target.role == "access":
                ports = [target.port, target.http_port]
                await proxy.command({"op": "upstream", "node": node, "ports": ports})

        async def sampler() -> None:
            while True:
                t = gen.clock() - t_start
                for p in logic:
                    # pending-ACK entries as the node last published them (≤ 0.5 s old)
                    pending = read_gauge(str(folder), p.name).get("pending_acks", 0)
                    load_rows.append(
                        {
                            "t": t,
                            "tier": "logic",
                            "node": p.index,
                            "up": p.up,
                            "connections": 0,
                            "pending_acks": pending if p.up else 0,
                        }
                    )
                for p in access:
                    n = sum(1 for c in gen.clients.values() if c.access == p.index and c.online)
                    load_rows.append(
                        {
                            "t": t,
                            "tier": "access",
                            "node": p.index,
                            "up": p.up,
                            "connections": n if p.up else 0,
                        }
                    )
                await asyncio.sleep(sc["sample_interval_s"])

        cpu_window: dict[str, float] = {}

        async def window_end() -> None:
            # each process's CPU at the end of the sending window: the utilisation the
            # simulator reports is its busy time in the window, not in the drain
            await asyncio.sleep(max(0.0, t_start + sc["duration_s"] - gen.clock()))
            cpu_window.update(
                {p.name: p.cpu_s() for p in (*logic, *access, proxy, *business, *vendor)}
            )

        tasks = [asyncio.create_task(fault(f)) for f in sc["faults"]]
        tasks.append(asyncio.create_task(window_end()))
        tasks.append(asyncio.create_task(sampler()))
        tasks.append(asyncio.create_task(gen.watch_lag()))
        tasks.append(asyncio.create_task(rest.play(rest_plan, t_start)))
        await gen.play(plan, t_start)
        await asyncio.sleep(max(0.0, t_start + horizon - gen.clock()))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()
        if pushes is not None:
            pushes.close()
        online_at_end = {u for u, c in gen.clients.items() if c.online}
        await rest.aclose()
        await gen.aclose()
        cpu = {p.name: p.cpu_s() for p in (*logic, *access, proxy, *business, *vendor)}
        cpu["loadgen"] = time.process_time() - cpu0
        await asyncio.gather(*(p.stop() for p in (*logic, *access, proxy, *business, *vendor)))
    finally:
        for task in tasks:
            task.cancel()
        if rest is not None:
            await rest.aclose()
        if gen is not None:
            gen.close()
        if pushes is not None:
            pushes.close()
        for p in (*logic, *access, proxy, *business, *vendor):
            p.kill()
        # reap them in this loop (also when unwinding from Ctrl-C or SIGTERM), so their
        # pipes close here rather than in a closed loop's garbage
        for p in (*logic, *access, proxy, *business, *vendor):
            await p.wait_gone()
    extra = _extra(sc, gen, folder, cpu, cpu_window or cpu, logic, access, setup_s, t_start)
    counters = extra.pop("real_counters")
    extra.update(_push_summary(folder, counters, vendor))
    if pushes is not None:
        pushes.write(folder / "device_pushes.json", t_start)
    result = build_result(
        sc,
        gen.events,
        store_mod.read_stored(str(db)),
        t_start=t_start,
        users=len(gen.kinds),
        kind=gen.kinds,
        devices=plan.devices,
        screening=store_mod.read_screening(str(db)),
        online_at_end=online_at_end,
        fault_log=fault_log,
        load_rows=load_rows,
        extra=extra,
        offline_pushes=pushes.arrivals if pushes is not None else None,
    )
    result.summary.update(rest.summary())  # the backend's rest_* counters
    result.summary.update(rest_latency_metrics(result.messages))
    result.summary["wall_s"] = time.perf_counter() - wall0
    result.counters = {k: int(v) for k, v in sorted(counters.items())}
    return result


def _push_summary(folder: Path, counters: dict, vendor: list) -> dict:
    """The simulator's offline-push summary keys from the vendor's counters and the load
    generator's (``None``: no vendor ran, nothing was measured); the vendor's counters
    join the run's as ``vendor_<key>``."""
    keys = ("offline_pushes", "offline_pushes_lost", "offline_push_refused")
    keys += ("offline_push_collapsed", "push_opens", "offline_push_sent")
    if not vendor:
        return dict.fromkeys((*keys, "offline_push_dropped"))
    stats = read_stats(str(folder), "vendor")
    counters.update({f"vendor_{k}": v for k, v in stats.items()})
    out = {k: int(stats.get(k, 0)) for k in keys[:4]}
    out["push_opens"] = int(counters.get("push_opens", 0))
    out.update(push_metrics(out))
    return out


def _p_ms(values_s: list[float], q: float) -> float | None:
    """The ``q``-th percentile of ``values_s`` in ms (None when there are none)."""
    import numpy as np

    return float(1000.0 * np.percentile(values_s, q)) if values_s else None


def _extra(
    sc, gen, folder: Path, cpu: dict, cpu_window: dict, logic, access, setup_s: float, t_start
) -> dict:
    """The summary keys the harness measures itself (``docs/metrics.md``, Real runs).
    ``cpu`` is each process's CPU seconds over the run, ``cpu_window`` over the sending
    window."""
    window = sc["duration_s"]
    cpu_logic = sum(cpu[p.name] for p in logic)
    cpu_access = sum(cpu[p.name] for p in access)
    window_logic = sum(cpu_window[p.name] for p in logic)
    window_access = sum(cpu_window[p.name] for p in access)
    logic_stats = read_stats(str(folder), "logic")
    access_stats = read_stats(str(folder), "access")
    counters = dict(logic_stats)
    counters.update({f"access_{k}": v for k, v in access_stats.items()})
    counters.update({f"proxy_{k}": v for k, v in read_stats(str(folder), "proxy").items()})
    counters.update(gen.counters)
    counters["reconnects"] = gen.events.reconnects
    # CPU in the sending window over the window, as the simulator's busy time in the
    # window: the drain's work (the last messages' ACKs, a short poller's polls) is not in it
    u_logic = window_logic / (len(logic) * window)
    u_access = window_access / (len(access) * window)
    # heartbeats are counted from connected time, as the simulator counts them (the
    # push clients send them, at their phase; the count keeps the simulator's definition)
    beat = sc["transport.heartbeat_s"]
    spans = gen.events.connected
    heartbeats = int(sum(b - a for a, b in spans) / beat)
    end = t_start + window
    in_window = sum(max(0.0, min(b, end) - max(a, t_start)) for a, b in spans)
    return {
        "cpu_s_by_process": {k: round(v, 4) for k, v in cpu.items()},
        "cpu_s_logic": cpu_logic,
        "cpu_s_access": cpu_access,
        "cpu_s_loadgen": cpu["loadgen"],
        "utilization_logic": u_logic,
        "utilization_access": u_access,
        "server_utilization": (window_logic + window_access)
        / ((len(logic) + len(access)) * window),
        "heartbeats": heartbeats,
        "heartbeats_window": int(in_window / beat),
        "retransmits_downlink": int(logic_stats.get("retransmits_downlink", 0)),
        "rejections": int(logic_stats.get("rejections", 0)),
        "store_failures": int(logic_stats.get("store_failures", 0)),
        "dedup_hits": int(logic_stats.get("dedup_hits", 0)),
        "relogins": int(gen.counters.get("relogins", 0)),
        "logins_rejected": int(access_stats.get("logins_rejected", 0)),
        "liveness_drops": int(access_stats.get("liveness_drops", 0)),
        "sync_pages": int(gen.counters.get("sync_pages", 0)),
        "users": sc["workload.users"],
        "horizon_s": sc["duration_s"] + sc["drain_s"],
        "network_model": "real",
        "real_setup_s": setup_s,
        "loadgen_lag_p99_ms": _p_ms(gen.lags_s, 99),
        "loadgen_lag_max_ms": 1000.0 * max(gen.lags_s) if gen.lags_s else None,
        "poll_return_p50_ms": _p_ms(gen.poll_returns_s, 50),
        "poll_return_p99_ms": _p_ms(gen.poll_returns_s, 99),
        "real_processes": len(logic) + len(access),
        "real_counters": counters,
    }
