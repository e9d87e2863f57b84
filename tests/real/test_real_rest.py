"""REST senders in ``immodel real``: the business backend's calls over HTTPS to the access
node's REST endpoint, signed with the admin UserSig, under the per-app rate limit, stored
and fanned out by the logic tier like SDK messages (:mod:`immodel.real.rest_backend`)."""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from collections import Counter
from dataclasses import replace as dataclass_replace
from types import SimpleNamespace

import pandas as pd
import pytest

from immodel import Scenario
from immodel.protocol.rest import ADMIN_UID, GAVE_UP
from immodel.real.rest_backend import make_rest_plan
from immodel.sim.model import run
from tests.real.real_helpers import SMALL, shared_real_run

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::immodel.errors.DrainWarning"),
]

# 30 users, single sends at 3 calls/s and one broadcast at 2 s, far below the limit
SINGLE = {
    **SMALL,
    "workload.users": 30,
    "duration_s": 6.0,
    "drain_s": 2.0,
    "workload.rest_rate_per_s": 3.0,
    "workload.rest_broadcasts": [2.0],
}
# batches of 2 at 8 calls/s against a limit of 2 calls per second, 2 retries allowed: a
# call still refused after its second retry is given up (its messages fail)
LIMIT_S = 2
OVER = {
    **SMALL,
    "workload.users": 20,
    "workload.send_rate_per_user": 0.2,
    "duration_s": 4.0,
    "drain_s": 4.0,
    "workload.rest_rate_per_s": 8.0,
    "workload.rest_batch_size": 2,
    "server.rest_max_calls_per_s": LIMIT_S,
    "workload.rest_max_retries": 2,
}


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    return shared_real_run(tmp_path_factory, "rest-single", Scenario.load("baseline", SINGLE))[0]


@pytest.fixture(scope="module")
def over(tmp_path_factory):
    return shared_real_run(tmp_path_factory, "rest-over", Scenario.load("baseline", OVER))[0]


def _rest(messages: pd.DataFrame) -> pd.DataFrame:
    return messages[messages["origin"] == "rest"]


@pytest.mark.parametrize("overrides", [SINGLE, OVER])
def test_the_plan_makes_the_simulated_backends_calls(overrides):
    # no real run: the plan's messages are the simulated run's, same ids, times, users
    sc = Scenario.load("baseline", overrides)
    sim = _rest(run(sc).messages)
    planned = [
        (m.msg_id, m.conversation, u, call.t_s)
        for call in make_rest_plan(sc)
        for m, rcpt in call.messages
        for u in rcpt
    ]
    got = sorted(
        zip(sim["msg_id"], sim["conversation"], sim["recipient"], sim["t_send"], strict=True)
    )
    assert len(planned) == len(got) > 0
    for (pid, pconv, pu, pt), (sid, sconv, su, st) in zip(sorted(planned), got, strict=True):
        assert (pid, pconv, pu) == (sid, sconv, su)
        assert pt == pytest.approx(st, abs=1e-9)


def test_single_sends_and_a_broadcast_lose_and_duplicate_nothing(single):
    s = single.summary
    m = _rest(single.messages)
    plan = make_rest_plan(single.scenario)
    assert s["lost"] == 0 and s["duplicates"] == 0 and s["send_failures"] == 0
    assert set(m["sender"]) == {ADMIN_UID}
    assert set(m["msg_id"]) == {msg.msg_id for c in plan for msg, _ in c.messages}
    # the broadcast: one message, one copy shown to each of the 30 users exactly once
    broadcast = m[m["conversation"] == "broadcast"]
    assert broadcast["msg_id"].nunique() == 1
    assert sorted(broadcast["recipient"]) == list(range(30))
    assert (broadcast["copies"] == 1).all() and broadcast["stored"].all()
    singles = m[m["conversation"] != "broadcast"]
    assert (singles["copies"] == 1).all() and singles["stored"].all()
    sdk = single.messages[single.messages["origin"] == "sdk"]
    assert len(sdk) > 0 and set(sdk["sender"]) <= set(range(30))


def test_every_call_is_admitted_once_below_the_limit(single):
    s = single.summary
    calls = len(make_rest_plan(single.scenario))
    assert s["rest_calls_offered"] == s["rest_calls"] == calls
    assert s["rest_refused"] == s["rest_retries"] == s["rest_gave_up"] == 0
    assert s["rest_messages"] == len(_rest(single.messages).drop_duplicates("msg_id"))
    r = single.requests
    assert (r["kind"] == "rest").sum() == calls and (r["kind"] == "rest_refused").sum() == 0
    # the access node counted the same calls as the backend's records
    assert single.counters["access_rest_admitted"] == calls


def test_the_counts_match_the_simulated_run(single):
    sim = run(single.scenario).summary
    real = single.summary
    for key in ("rest_calls_offered", "rest_messages", "rest_calls", "rest_refused"):
        assert real[key] == sim[key], key
    assert real["rest_latency_p50_ms"] is not None and sim["rest_latency_p50_ms"] is not None


def test_over_the_limit_calls_are_refused_and_retried(over):
    s = over.summary
    r = over.requests
    rows = r[r["kind"].isin(["rest", "rest_refused"])]
    assert s["rest_refused"] > 0 and s["rest_gave_up"] > 0
    assert (rows["kind"] == "rest").sum() == s["rest_calls"]
    assert (rows["kind"] == "rest_refused").sum() == s["rest_refused"]
    assert over.counters["access_rest_admitted"] == s["rest_calls"]
    assert over.counters["access_rest_refused"] == s["rest_refused"]
    # the caller's rule: each refusal is followed by one retry, but the last of a call
    # given up (no timeouts here: every answer is back within a second)
    assert s["rest_refused"] == s["rest_retries"] + s["rest_gave_up"]
    # every call ends admitted or given up; attempts = first tries + retries
    assert s["rest_calls_offered"] == s["rest_calls"] + s["rest_gave_up"]
    assert s["rest_calls_offered"] + s["rest_retries"] == s["rest_calls"] + s["rest_refused"]
    # the limiter's rule per whole second: at most L admitted, and exactly L in a second
    # that refused anything (a call is refused only when the second is full)
    second = rows["t"].map(math.floor)
    admitted = rows[rows["kind"] == "rest"].groupby(second).size()
    refused = rows[rows["kind"] == "rest_refused"].groupby(second).size()
    assert admitted.max() == s["rest_calls_max_per_s"] == LIMIT_S
    for k in refused.index:
        assert admitted.get(k, 0) == LIMIT_S, k


def test_given_up_calls_fail_their_messages_and_the_rest_arrive(over):
    s = over.summary
    m = _rest(over.messages)
    failed = m[m["failure_reason"] == GAVE_UP]
    assert failed["msg_id"].nunique() == 2 * s["rest_gave_up"]  # batches of 2 users
    assert not failed["stored"].any()
    delivered = m[m["failure_reason"] == ""]
    assert delivered["msg_id"].nunique() == 2 * s["rest_calls"]
    assert (delivered["copies"] == 1).all()
    assert s["lost"] == 0 and s["duplicates"] == 0
    # the same calls as the simulated run (its refusals depend on the arrival times)
    sim = run(over.scenario).summary
    assert s["rest_calls_offered"] == sim["rest_calls_offered"]
    assert s["rest_messages"] == sim["rest_messages"]
    assert s["rest_calls_max_per_s"] == sim["rest_calls_max_per_s"] == LIMIT_S


def test_a_call_without_an_answer_goes_again_with_the_same_ids(tmp_path):
    # In-process, no servers: the backend against the access node's endpoint whose logic
    # tier loses the first reply of each message (a crash would). The endpoint answers
    # the first attempt "no reply" after transport.request_timeout_s; the backend's own
    # timeout sends the call again with the same message ids, whose reply then comes.

    from aiohttp import web

    from immodel.protocol.messages import SendReply
    from immodel.real import wire
    from immodel.real.loadgen import Events
    from immodel.real.orchestrator import SDKAPPID, USERSIG_KEY, _make_tls
    from immodel.real.rest_backend import RestBackend, RestEndpoint

    timeout_s = 0.3
    sc = Scenario.load(
        "baseline",
        {
            **SMALL,
            "workload.rest_rate_per_s": 1.0,
            "workload.rest_latency_ms": 1.0,
            "transport.request_timeout_s": timeout_s,
        },
    )
    cert, key, client_ctx = _make_tls(tmp_path)
    cfg = {"t0": time.monotonic(), "sdkappid": SDKAPPID, "usersig_key": USERSIG_KEY}
    asked: list[str] = []

    async def ask(user, what, frame, timeout):
        msg_id = frame["msg"][0]
        asked.append(msg_id)
        if asked.count(msg_id) == 1:
            await asyncio.sleep(timeout)  # the reply is lost
            return None
        return {"reply": wire.reply_to_wire(SendReply(msg_id, True, 1))}

    async def main():
        clock = lambda: time.monotonic() - cfg["t0"]  # noqa: E731
        server = SimpleNamespace(
            cfg={**cfg, "scenario": sc.values},
            clock=clock,
            origin_s=0.0,
            stats=SimpleNamespace(counts=Counter()),
            epoch_s=sc["security.epoch_s"],
            request_timeout_s=timeout_s,
            _ask=ask,
        )
        endpoint = RestEndpoint(server)
        app = web.Application()
        app.add_routes([web.post("/rest", endpoint.h_rest)])
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        port = runner.addresses[0][1]
        gen = SimpleNamespace(
            sc=sc,
            cfg=cfg,
            loop=asyncio.get_running_loop(),
            clock=clock,
            usersig_clock=clock,
            events=Events(),
            counters=Counter(),
            t_start=0.0,
        )
        backend = RestBackend(gen, client_ctx, lambda: [(0, port)])
        call = make_rest_plan(sc)[0]
        await backend.play([dataclass_replace(call, t_s=0.0)], clock())
        await asyncio.sleep(timeout_s + 0.5)
        await backend.aclose()
        await runner.cleanup()
        return backend, gen, server

    backend, gen, server = asyncio.run(main())
    msg_id = make_rest_plan(sc)[0].messages[0][0].msg_id
    assert asked == [msg_id, msg_id]  # the same id twice: the logic tier's dedup key
    assert backend.caller.timeouts == 1 and backend.caller.retries == 1
    assert gen.events.attempts == {msg_id: 2}
    assert [(i, f) for i, _, f in gen.events.outcomes] == [(msg_id, "")]
    assert [r[2] for r in gen.events.requests] == ["rest", "rest"]  # both admitted
    assert server.stats.counts["rest_admitted"] == 2
    s = backend.summary()
    assert (s["rest_calls"], s["rest_retries"], s["rest_calls_offered"]) == (2, 1, 1)
