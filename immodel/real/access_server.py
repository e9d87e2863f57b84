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

Every logic node is told who is connected here and how (``hello`` on each (re)connect,
then ``attach`` / ``detach``); a login also goes to the owner, which moves the offline
queue to the downlink. A lost logic connection is retried every 50 ms.

Web clients use HTTPS on a second port (aiohttp, the same certificate): ``POST /login``
(UserSig), ``/send`` (answered with the send's reply), ``/sync`` (with the page),
``/poll`` (the ACKs ride on it; answered with what waits, or — a long poll — held on the
logic node up to ``hold_s``), ``/logout``. Each request waits for the logic node's
answer for at most ``transport.request_timeout_s`` (a poll: its hold more) and is then
answered empty, which the client's own timeouts and retries handle; a poll held by a
logic node whose connection drops (a crash) is answered empty at once, so that its
client polls the survivor. A web session ends at its UserSig's expiry as a push
session does: its requests are then answered 401 ``expired`` until it logs in again.
When a logic connection opens again, every other logic node
is told (``rehome``): it hands the copies it queued for this node's pollers back
(``route``, forwarded to each poller's owner). The process prints ``READY <tls port>
<https port>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import ssl
import sys

from immodel.protocol.rest import ADMIN_UID
from immodel.protocol.usersig import UserSigError, usersig_last_valid_s, verify_usersig
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
#: The body of a web request's 401 when its session ended at its UserSig's expiry (or a
#: login's token had expired): the SDK fetches a fresh UserSig and logs in again.
EXPIRED = "expired"


class _WebSession:
    """One web login's session (an identity: its expiry timer ends it only if it is
    still the user's current session)."""

    __slots__ = ()


class AccessServer:
    """The sessions of one access node and its links to the logic nodes."""

    def __init__(self, cfg: dict, node_id: int) -> None:
        self.cfg = cfg
        self.node_id = node_id
        self.clock = RunClock(cfg["t0"])
        self.logic_ports: list[int] = list(cfg["logic_ports"])
        self.links: dict[int, asyncio.StreamWriter] = {}
        self.sessions: dict[int, asyncio.StreamWriter] = {}  # push users' connections
        self.web: set[int] = set()  # users logged in over HTTP (polling)
        # web sessions and UserSig expiry: each web login's session (its expiry timer
        # ends it only if it is still the user's), and the users whose session ended at
        # expiry (their requests are refused as expired until they log in again)
        self.web_session: dict[int, _WebSession] = {}
        self.web_expired: set[int] = set()
        # HTTP requests waiting for the logic tier's answer: (user, what) → futures
        self.waiting: dict[tuple[int, str], list[asyncio.Future]] = {}
        self.pushed_from: dict[tuple[int, str], int] = {}
        self.stats = Stats(cfg["dir"], f"access{node_id}")
        self.epoch_s = cfg["scenario"]["security.epoch_s"]
        # UserSigs are on the simulator's clock: seconds since the sending period began
        # (``t_start`` on the run clock: in the configuration of a restarted node, by a
        # ``start`` command for one up at the start; before it, the set-up is second 0)
        self.origin_s: float | None = cfg.get("t_start")
        self._expiring: list[tuple[int, asyncio.StreamWriter, int]] = []
        self.request_timeout_s = cfg["scenario"]["transport.request_timeout_s"]
        # liveness: a push connection that sent nothing (no heartbeat either) for
        # transport.liveness_timeout_s is dropped (run clock of each session's last frame)
        self.liveness_s = cfg["scenario"]["transport.liveness_timeout_s"]
        self.heard_at: dict[asyncio.StreamWriter, float] = {}
        # the REST API for business backends (immodel.real.rest_backend)
        from immodel.real.rest_backend import RestEndpoint

        self.rest = RestEndpoint(self)

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
            users = [[u, "push"] for u in self.sessions] + [[u, "poll"] for u in self.web]
            writer.write(wire.encode({"op": "hello", "access": self.node_id, "users": users}))
            self.links[node] = writer
            self.stats.counts["logic_links_opened"] += 1
            if self.web and len(self.links) > 1:
                # a logic node is (back) up: some pollers' owner is now this node, but
                # the copies another node queued for them while they were its own are
                # still there; each other node hands its pollers' copies back through
                # here to their owner (the simulator's poll reads every holder instead)
                for other, w in self.links.items():
                    if other != node and not w.is_closing():
                        w.write(wire.encode({"op": "rehome"}))
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
                    # the polls this node held died with it: answer them empty now, so
                    # that their clients poll again at once, to their new owner (the
                    # simulator parks a long poll on the access node, where a logic
                    # crash does not reach it)
                    held = [u for (u, what) in self.waiting if what == "poll"]
                    orphans = [u for u in held if self.owner(u) == node]
                    del self.links[node]
                    for user in orphans:
                        self.stats.counts["polls_orphaned"] += 1
                        self._answer_web(user, {"op": "poll_resp", "user": user, "items": []})
                writer.close()
            await asyncio.sleep(RECONNECT_S)

    def from_logic(self, frame: dict) -> None:
        user = int(frame["user"])
        if frame["op"] == "route":
            # a copy for a poller, stored by another logic node: its queue is on the node
            # that owns the poller (where its polls and their ACKs go)
            self.stats.counts["copies_routed"] += 1
            self.to_logic(self.owner(user), {**frame, "op": "routed"})
            return
        if user == ADMIN_UID:  # the reply to a REST call's message
            self._answer_web(user, frame)
            return
        if user in self.web:
            self._answer_web(user, frame)
            return
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
                    now=self.epoch_s + self.usersig_second(),
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
            self.to_all_logic({"op": "attach", "user": user, "mode": "push"})
            self.to_logic(self.owner(user), {"op": "login", "user": user, "mode": "push"})
            writer.write(wire.encode({"op": "login_ok"}))
            # the session ends when its UserSig does (the SDK's "UserSig expired"): at the
            # first whole second past time + expire
            self._end_at_expiry(user, writer, usersig_last_valid_s(frame["sig"]))
            self.heard_at[writer] = self.clock()
            while True:
                frame = await wire.read_frame(reader)
                if frame is None:
                    break
                self.heard_at[writer] = self.clock()
                if frame.get("op") == "heartbeat":
                    self.stats.counts["heartbeats"] += 1
                    writer.write(wire.encode({"op": "pong"}))
                    continue
                self.from_client(user, frame)
        except (ConnectionError, wire.FrameError, TimeoutError, ssl.SSLError):
            pass
        finally:
            self.heard_at.pop(writer, None)
            if user is not None and self.sessions.get(user) is writer:
                del self.sessions[user]
                self.to_all_logic({"op": "detach", "user": user})
            writer.close()

    def usersig_second(self) -> int:
        """Now on the UserSigs' clock, in whole seconds (what a token is checked at)."""
        if self.origin_s is None:
            return 0
        return math.floor(self.clock() - self.origin_s)

    def _end_at_expiry(self, user: int, writer, last_valid_s: int) -> None:
        if self.origin_s is None:  # set-up: scheduled when the sending period starts
            self._expiring.append((user, writer, last_valid_s))
            return
        ends_at = self.cfg["t0"] + self.origin_s + last_valid_s + 1 - self.epoch_s
        asyncio.get_running_loop().call_at(ends_at, self._end_expired_session, user, writer)

    def command(self, cmd: dict) -> None:
        """The orchestrator's commands: ``{"op": "start", "t": T}`` — the sending period
        began at run-clock ``T`` (the UserSigs' clock starts there)."""
        if cmd["op"] == "start":
            self.origin_s = float(cmd["t"])
            waiting, self._expiring = self._expiring, []
            for user, writer, last_valid_s in waiting:
                self._end_at_expiry(user, writer, last_valid_s)

    async def watch_liveness(self, period_s: float = 0.25) -> None:
        """Drop the push connections silent for ``transport.liveness_timeout_s`` (a
        partition that cut their uplink): closed cleanly, so the logic tier moves what
        was not acknowledged to the offline queues (``liveness_drops``)."""
        while True:
            await asyncio.sleep(period_s)
            now = self.clock()
            for user, writer in list(self.sessions.items()):
                heard = self.heard_at.get(writer)
                if heard is not None and now - heard > self.liveness_s:
                    # the session ends now (its socket's end may be held by the cut)
                    self.stats.counts["liveness_drops"] += 1
                    del self.sessions[user]
                    self.heard_at.pop(writer, None)
                    self.to_all_logic({"op": "detach", "user": user})
                    writer.close()

    def _end_expired_session(self, user: int, writer: asyncio.StreamWriter) -> None:
        """``user``'s UserSig expired: say so and close the connection (its end detaches
        the user: what was not acknowledged goes to the offline queue)."""
        if isinstance(writer, _WebSession):  # a web session: no connection of its own
            self._end_expired_web(user, writer)
            return
        if self.sessions.get(user) is not writer or writer.is_closing():
            return  # a newer login replaced it, or it ended already
        self.stats.counts["sessions_expired"] += 1
        writer.write(wire.encode({"op": "expired"}))
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

    # -- web clients: HTTP long and short polling (aiohttp) ------------------------------
    def _answer_web(self, user: int, frame: dict) -> None:
        op = frame["op"]
        if op == "reply":
            key = (user, "reply:" + str(frame["reply"][0]))
        elif op == "sync_resp":
            key = (user, "sync")
        elif op == "poll_resp":
            key = (user, "poll")
        else:
            self.stats.counts["downlink_dropped_web"] += 1
            return
        futures = self.waiting.get(key)
        while futures:
            fut = futures.pop(0)
            if not fut.done():
                fut.set_result(frame)
                break
        else:
            self.stats.counts["answers_without_request"] += 1
        if not futures:
            self.waiting.pop(key, None)

    # -- web sessions and UserSig expiry ---------------------------------------------------
    def _end_expired_web(self, user: int, session: _WebSession) -> None:
        """``user``'s web session ends with its UserSig (the simulator's poller is
        detached at its token's expiry, then fetches a token and logs in): it leaves
        :attr:`web`, the logic tier detaches it (what was not acknowledged goes to the
        offline queue), and its waiting requests — the held poll — are voided, which
        their handlers answer as expired (HTTP 401 ``expired``), as they do the requests
        that come before the next login."""
        if self.web_session.get(user) is not session or user not in self.web:
            return  # a newer login replaced it, or it ended already
        self.stats.counts["sessions_expired"] += 1
        del self.web_session[user]
        self.web.discard(user)
        self.web_expired.add(user)
        self.to_all_logic({"op": "detach", "user": user})
        self._void_requests(user)

    def _refuse_if_expired(self, user: int) -> None:
        """Answer a web request of a session that ended at its UserSig's expiry with 401
        ``expired`` (the SDK's "UserSig expired": fetch a token, log in again)."""
        if user in self.web_expired and user not in self.web:
            from aiohttp import web

            self.stats.counts["requests_refused_expired"] += 1
            raise web.HTTPUnauthorized(text=EXPIRED)

    def _void_requests(self, user: int) -> None:
        """``user``'s app logged out or in again: the requests of its earlier session
        (a held poll whose connection the app closed, a send it will send again) get no
        answer (None) now. Answers are matched to waiting requests in order, so one left
        waiting would take the answer meant for the new session's request."""
        for key in [k for k in self.waiting if k[0] == user]:
            for fut in self.waiting.pop(key):
                if not fut.done():
                    fut.set_result(None)
                    self.stats.counts["requests_voided"] += 1

    async def _ask(self, user: int, key: str, frame: dict, timeout_s: float) -> dict | None:
        """Forward ``frame`` to the user's logic node and wait for the answer named by
        ``key`` (None: no logic node, or no answer in ``timeout_s``)."""
        fut = asyncio.get_running_loop().create_future()
        self.waiting.setdefault((user, key), []).append(fut)
        if not self.to_logic(self.owner(user), frame):
            fut.cancel()
            return None
        try:
            return await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            return None

    async def _json(self, request) -> tuple[int, dict]:
        from aiohttp import web

        try:
            data = await request.json()
            user = int(data["user"])
        except (ValueError, KeyError, TypeError):
            raise web.HTTPBadRequest(text="a JSON object with 'user' is expected") from None
        if request.path != "/login" and user not in self.web:
            self._refuse_if_expired(user)
            raise web.HTTPUnauthorized(text="log in first")
        self.stats.counts[f"requests_{request.path.strip('/')}"] += 1
        return user, data

    async def h_login(self, request):
        from aiohttp import web

        user, data = await self._json(request)
        try:
            verify_usersig(
                data["sig"],
                sdkappid=self.cfg["sdkappid"],
                key=self.cfg["usersig_key"],
                identifier=str(user),
                now=self.epoch_s + self.usersig_second(),
            )
        except (UserSigError, KeyError) as exc:
            self.stats.counts["logins_rejected"] += 1
            if isinstance(exc, UserSigError) and exc.reason == "expired":
                raise web.HTTPUnauthorized(text=EXPIRED) from None  # fetch one, log in
            raise web.HTTPForbidden(text="UserSig refused") from None
        self._void_requests(user)
        self.web.add(user)
        # the session ends when its UserSig does, as a push session's
        session = self.web_session[user] = _WebSession()
        self.web_expired.discard(user)
        self._end_at_expiry(user, session, usersig_last_valid_s(data["sig"]))
        self.stats.counts["logins"] += 1
        self.to_all_logic({"op": "attach", "user": user, "mode": "poll"})
        self.to_logic(self.owner(user), {"op": "login", "user": user, "mode": "poll"})
        return web.json_response({"op": "login_ok"})

    async def h_send(self, request):
        from aiohttp import web

        user, data = await self._json(request)
        msg_id = str(data["msg"][0])
        frame = {"op": "send", "user": user, "msg": data["msg"]}
        answer = await self._ask(user, "reply:" + msg_id, frame, self.request_timeout_s)
        if answer is None:
            self._refuse_if_expired(user)
        return web.json_response({"reply": answer["reply"] if answer else None})

    async def h_sync(self, request):
        from aiohttp import web

        user, data = await self._json(request)
        frame = {"op": "sync", "user": user, "req": data["req"]}
        answer = await self._ask(user, "sync", frame, self.request_timeout_s)
        if answer is None:
            self._refuse_if_expired(user)
        return web.json_response({"resp": answer["resp"] if answer else None})

    async def h_poll(self, request):
        from aiohttp import web

        user, data = await self._json(request)
        acks = data.get("acks") or []
        if acks:  # ACKs ride on the poll; the (one) logic node holds the outbox
            self.to_logic(self.owner(user), {"op": "ack", "user": user, "ids": acks})
        hold_s = float(data.get("hold_s", 0.0))
        frame = {"op": "poll", "user": user, "hold_s": hold_s}
        answer = await self._ask(user, "poll", frame, hold_s + self.request_timeout_s)
        if answer is None:
            self._refuse_if_expired(user)
        # "t": when this node answered (run clock), for the harness's account of the
        # answer's way back (poll_return_*_ms)
        items = answer["items"] if answer else None
        return web.json_response({"items": items, "t": self.clock()})

    async def h_ping(self, request):
        """A no-op (not a request of the run): a web client's set-up opens its second
        keep-alive connection with it, as a browser's pool already holds one."""
        from aiohttp import web

        return web.json_response({"op": "pong"})

    async def h_logout(self, request):
        from aiohttp import web

        user, _ = await self._json(request)
        self._void_requests(user)
        self.web.discard(user)
        self.to_all_logic({"op": "detach", "user": user})
        return web.json_response({"op": "bye"})

    async def _serve_http(self, ctx: ssl.SSLContext) -> int:
        from aiohttp import web

        app = web.Application()
        app.add_routes(
            [
                web.post("/login", self.h_login),
                web.post("/send", self.h_send),
                web.post("/sync", self.h_sync),
                web.post("/poll", self.h_poll),
                web.post("/logout", self.h_logout),
                web.get("/ping", self.h_ping),
                web.post("/rest", self.rest.h_rest),
            ]
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, HOST, 0, ssl_context=ctx)
        await site.start()
        return runner.addresses[0][1]

    async def serve(self) -> None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cfg["cert"], self.cfg["key"])
        server = await asyncio.start_server(self.client, HOST, 0, ssl=ctx)
        http_port = await self._serve_http(ctx)
        self._link_tasks = [
            asyncio.create_task(self.keep_logic_link(n)) for n in range(len(self.logic_ports))
        ]
        self._link_tasks.append(asyncio.create_task(self.watch_liveness()))
        # ready once every logic node is reached: a login before that would find no owner
        # (a restarted access node may find a logic node down: it goes ahead after 5 s)
        for _ in range(100):
            if len(self.links) == len(self.logic_ports):
                break
            await asyncio.sleep(0.05)
        announce_ready(server.sockets[0].getsockname()[1], http_port)
        async with server:
            await server.serve_forever()


def main(argv: list[str]) -> None:
    cfg = load_config(argv[0])
    server = AccessServer(cfg, int(argv[1]))
    with contextlib.suppress(KeyboardInterrupt):
        serve_until_terminated(server.serve, server.stats, server.command)


if __name__ == "__main__":
    main(sys.argv[1:])
