"""The customer's business backend of ``immodel real``: what the before-send callback calls.

A deployment with ``server.callback_enabled`` asks the customer's own backend, over
HTTP, whether each message may be sent; the backend's answer takes its time and may be
no. This process stands in for that backend: started by the orchestrator as ``python -m
immodel.real.business CONFIG.json 0`` (plain HTTP on 127.0.0.1, port chosen by the OS,
``READY <port>``), it answers ``POST /callback`` (a JSON body naming the message) after
a draw of ``server.callback_ms`` (exponential, the simulator's distribution) with
``{"verdict": "reject"}`` with probability ``server.callback_reject_prob`` and
``{"verdict": "allow"}`` otherwise. With ``server.screening_enabled`` it is also the
content screening service: ``POST /screen`` answers after a draw of
``server.screening_ms`` (exponential) with ``{"verdict": "block"}`` with probability
``server.screening_block_prob``, else ``"pass"``. (The simulator charges screening to a
stage of the logic node — a queue with ``server.workers``; a screening service of its
own, as cloud IM vendors run it, has no queue here: the same at light load.)

Its draws come from the run's stream ``business`` in the order the calls arrive, so a
real run's callbacks follow the simulator's distribution, not its per-message draws. The
logic server's HTTP client gives up after ``server.callback_timeout_s`` — the backend
still answers, late, and nobody reads it — and then applies
``server.callback_timeout_default``, as the simulator does.

Counters (``stats-business0-<pid>.json``): calls, rejects, screenings, blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

from immodel.real.common import HOST, Stats, announce_ready, load_config, serve_until_terminated


class Business:
    """The backend's one endpoint and its draws."""

    def __init__(self, cfg: dict) -> None:
        from immodel.sim.rng import Streams

        sc = cfg["scenario"]
        self.mean_s = sc["server.callback_ms"] / 1000.0
        self.reject_prob = sc["server.callback_reject_prob"]
        self.screening_mean_s = sc["server.screening_ms"] / 1000.0
        self.block_prob = sc["server.screening_block_prob"]
        self.stream = Streams(sc["seed"])["business"]
        self.stats = Stats(cfg["dir"], "business0")

    async def callback(self, request):
        from aiohttp import web

        await request.read()
        self.stats.counts["calls"] += 1
        # both draws at arrival, so the answers do not depend on when the sleeps end
        wait_s = self.stream.exponential(self.mean_s)
        reject = self.stream.uniform() < self.reject_prob
        await asyncio.sleep(wait_s)
        if reject:
            self.stats.counts["rejects"] += 1
        return web.json_response({"verdict": "reject" if reject else "allow"})

    async def screen(self, request):
        from aiohttp import web

        await request.read()
        self.stats.counts["screenings"] += 1
        wait_s = self.stream.exponential(self.screening_mean_s)
        block = self.stream.uniform() < self.block_prob
        await asyncio.sleep(wait_s)
        if block:
            self.stats.counts["blocks"] += 1
        return web.json_response({"verdict": "block" if block else "pass"})

    async def serve(self) -> None:
        from aiohttp import web

        app = web.Application()
        app.add_routes([web.post("/callback", self.callback), web.post("/screen", self.screen)])
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, HOST, 0)
        await site.start()
        announce_ready(runner.addresses[0][1])
        await asyncio.Event().wait()


def main(argv: list[str]) -> None:
    cfg = load_config(argv[0])
    business = Business(cfg)
    with contextlib.suppress(KeyboardInterrupt):
        serve_until_terminated(business.serve, business.stats)


if __name__ == "__main__":
    main(sys.argv[1:])
