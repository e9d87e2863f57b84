"""An access server process of ``immodel real``: holds the clients' TLS connections and
forwards their requests to the logic servers.

Started as ``python -m immodel.real.access_server CONFIG.json NODE``. Clients speak
:mod:`immodel.real.wire` frames inside TLS (the certificate the orchestrator made at
start). A client's first frame is a login with a real UserSig
(:func:`immodel.protocol.usersig.verify_usersig` on the run's clock); then:

* ``send`` and ``sync`` go to the user's logic node — rendezvous hashing
  (:func:`immodel.sim.kernel.rendezvous`, as the simulated access tier) over the logic
  nodes this process is connected to now; with the owner's connection gone (a crashed
  logic process) its users move to the survivors at once, and back when it returns;
* ``ack`` goes to the logic node that pushed each acknowledged copy (remembered per
  user and message id), since that node holds the pending-ACK entry;
* replies, pushes and sync pages from the logic nodes go down to the user's connection.

Every logic node is told who is connected here (``hello`` on each (re)connect, then
``attach`` / ``detach``); a login also goes to the owner, which moves the offline queue
to the downlink. A lost logic connection is retried every 50 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys

from immodel.protocol.usersig import UserSigError, verify_usersig
from immodel.real import wire
from immodel.real.common import (
    HOST,
    RunClock,
    Stats,
    announce_ready,
    load_config,
    serve_until_terminated,
)
from immodel.sim.kernel import rendezvous

RECONNECT_S = 0.05


class AccessServer:
    """The sessions of one access node and its links to the logic nodes."""

    def __init__(self, cfg: dict, node_id: int) -> None:
        self.cfg = cfg
        self.node_id = node_id
        self.clock = RunClock(cfg["t0"])
        self.logic_ports: list[int] = list(cfg["logic_ports"])
        self.links: dict[int, asyncio.StreamWriter] = {}
        self.sessions: dict[int, asyncio.StreamWriter] = {}
        self.pushed_from: dict[tuple[int, str], int] = {}
        self.stats = Stats(cfg["dir"], f"access{node_id}")
        self.epoch_s = cfg["scenario"]["security.epoch_s"]

    def owner(self, user: int) -> int | None:
        live = sorted(self.links)
        return rendezvous(user, live) if live else None

    def to_logic(self, node: int | None, obj: dict) -> bool:
        writer = self.links.get(node) if node is not None else None
        if writer is None or writer.is_closing():
            self.stats.counts["requests_dropped_no_logic"] += 1
            return False
        writer.write(wire.encode(obj))
        return True

    def to_all_logic(self, obj: dict) -> None:
        data = wire.encode(obj)
        for writer in self.links.values():
            if not writer.is_closing():
                writer.write(data)

    # -- logic links ----------------------------------------------------------------------
    async def keep_logic_link(self, node: int) -> None:
        port = self.logic_ports[node]
        while True:
            try:
                reader, writer = await asyncio.open_connection(HOST, port)
            except OSError:
                await asyncio.sleep(RECONNECT_S)
                continue
            writer.write(
                wire.encode({"op": "hello", "access": self.node_id, "users": list(self.sessions)})
            )
            self.links[node] = writer
            self.stats.counts["logic_links_opened"] += 1
            try:
                while True:
                    frame = await wire.read_frame(reader)
                    if frame is None:
                        break
                    self.from_logic(frame)
            except (ConnectionError, wire.FrameError):
                pass
            finally:
                if self.links.get(node) is writer:
                    del self.links[node]
                writer.close()
            await asyncio.sleep(RECONNECT_S)

    def from_logic(self, frame: dict) -> None:
        user = int(frame["user"])
        writer = self.sessions.get(user)
        if writer is None or writer.is_closing():
            self.stats.counts["downlink_dropped_no_session"] += 1
            return
        if frame["op"] == "push":
            self.pushed_from[(user, frame["item"][0])] = int(frame["node"])
        writer.write(wire.encode(frame))

    # -- clients --------------------------------------------------------------------------
    async def client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        user: int | None = None
        try:
            frame = await asyncio.wait_for(wire.read_frame(reader), 30.0)
            if frame is None or frame.get("op") != "login":
                return
            user = int(frame["user"])
            try:
                verify_usersig(
                    frame["sig"],
                    sdkappid=self.cfg["sdkappid"],
                    key=self.cfg["usersig_key"],
                    identifier=str(user),
                    now=self.epoch_s + self.clock(),
                )
            except UserSigError as exc:
                self.stats.counts["logins_rejected"] += 1
                writer.write(wire.encode({"op": "login_refused", "reason": str(exc.reason)}))
                user = None
                return
            old = self.sessions.get(user)
            if old is not None:
                old.close()  # a newer login of the same user replaces the old connection
            self.sessions[user] = writer
            self.stats.counts["logins"] += 1
            self.to_all_logic({"op": "attach", "user": user})
            self.to_logic(self.owner(user), {"op": "login", "user": user})
            writer.write(wire.encode({"op": "login_ok"}))
            while True:
                frame = await wire.read_frame(reader)
                if frame is None:
                    break
                self.from_client(user, frame)
        except (ConnectionError, wire.FrameError, TimeoutError, ssl.SSLError):
            pass
        finally:
            if user is not None and self.sessions.get(user) is writer:
                del self.sessions[user]
                self.to_all_logic({"op": "detach", "user": user})
            writer.close()

    def from_client(self, user: int, frame: dict) -> None:
        op = frame["op"]
        self.stats.counts[f"requests_{op}"] += 1
        if op == "send":
            self.to_logic(self.owner(user), {"op": "send", "user": user, "msg": frame["msg"]})
        elif op == "sync":
            self.to_logic(self.owner(user), {"op": "sync", "user": user, "req": frame["req"]})
        elif op == "ack":
            by_node: dict[int | None, list[str]] = {}
            for msg_id in frame["ids"]:
                node = self.pushed_from.pop((user, msg_id), None)
                by_node.setdefault(node, []).append(msg_id)
            for node, ids in by_node.items():
                target = node if node in self.links else self.owner(user)
                self.to_logic(target, {"op": "ack", "user": user, "ids": ids})

    async def serve(self) -> None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cfg["cert"], self.cfg["key"])
        server = await asyncio.start_server(self.client, HOST, 0, ssl=ctx)
        self._link_tasks = [
            asyncio.create_task(self.keep_logic_link(n)) for n in range(len(self.logic_ports))
        ]
        # ready once every logic node is reached: a login before that would find no owner
        # (a restarted access node may find a logic node down: it goes ahead after 5 s)
        for _ in range(100):
            if len(self.links) == len(self.logic_ports):
                break
            await asyncio.sleep(0.05)
        announce_ready(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()


def main(argv: list[str]) -> None:
    cfg = load_config(argv[0])
    server = AccessServer(cfg, int(argv[1]))
    with contextlib.suppress(KeyboardInterrupt):
        serve_until_terminated(server.serve, server.stats)


if __name__ == "__main__":
    main(sys.argv[1:])
