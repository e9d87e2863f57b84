"""Backend senders over the REST API in the simulator (immodel.sim.backend): single, batch
and broadcast calls reach every recipient through the same stages, dedup and fan-out as
SDK messages, with the HTTPS handshake and the access node's work on their latency."""

from __future__ import annotations

import math

import pandas as pd
import pytest

import immodel
from immodel.analysis.checker import check_trace
from immodel.cli import main
from immodel.errors import ConfigError
from immodel.protocol.rest import ADMIN_UID
from immodel.scenario import Scenario
from immodel.sim.world import World
from tests.sim.helpers import quiet

REST_MS = 20.0  # one-way backend ↔ access tier in the quiet scenarios below
NET_MS = 40.0  # quiet(): the users' one-way latency
LOGIN_CPU_MS = 1.0  # server.tls_handshake_ms
AUTH_MS = 0.3  # server.auth_ms: the access node checks the admin UserSig of every call


def _broadcast_latency_ms(recipients: int, handshake: bool) -> float:
    """A broadcast's latency on an idle quiet() deployment with constant times: request
    (after 2 handshake round trips unless kept alive), the access node's UserSig check
    (+ TLS), the logic stages (a group message: write diffusion costs one inbox copy per
    recipient), the fan-out, and the recipient's downlink."""
    logic = 0.3 + 0.3 + 0.3 + (1.0 + 0.01 * recipients) + (0.1 + 0.02 * recipients)
    access = AUTH_MS + (LOGIN_CPU_MS if handshake else 0.0)
    setup = 2 * 2 * REST_MS if handshake else 0.0
    return setup + REST_MS + access + logic + NET_MS


def _run_quiet(**overrides):
    sc = quiet(**{"workload.rest_latency_ms": REST_MS, **overrides})
    world = World(sc)
    world.run()
    return world, world.rec.messages_frame()


def test_a_broadcast_is_one_call_reaching_every_user_in_the_time_its_path_takes():
    world, msgs = _run_quiet(**{"workload.rest_broadcasts": [5.0]})
    assert world.backend.summary()["rest_calls"] == 1
    assert msgs["msg_id"].nunique() == 1
    assert sorted(msgs["recipient"]) == list(range(4))  # every user, the admin is none of them
    assert (msgs["origin"] == "rest").all() and (msgs["sender"] == ADMIN_UID).all()
    expected = _broadcast_latency_ms(4, handshake=True)
    assert msgs["latency_ms"].to_numpy() == pytest.approx([expected] * 4, abs=1e-6)


def test_keep_alive_saves_the_handshake_on_every_call_after_the_first():
    _, msgs = _run_quiet(
        **{"workload.rest_broadcasts": [5.0, 10.0], "workload.rest_keep_alive": True}
    )
    lat = msgs.groupby("t_send")["latency_ms"].max()
    assert lat.loc[5.0] == pytest.approx(_broadcast_latency_ms(4, handshake=True), abs=1e-6)
    assert lat.loc[10.0] == pytest.approx(_broadcast_latency_ms(4, handshake=False), abs=1e-6)


def test_single_and_batch_sends_deliver_every_pair_once_and_in_order():
    sc = Scenario.load(
        "baseline",
        {
            "workload.users": 50,
            "duration_s": 10.0,
            "workload.rest_rate_per_s": 10.0,
            "workload.rest_batch_size": 5,
        },
    )
    r = immodel.run(sc)
    s = r.summary
    rest = r.messages[r.messages["origin"] == "rest"]
    assert s["rest_calls"] == s["rest_calls_offered"] > 0
    assert s["rest_messages"] == len(rest) == 5 * s["rest_calls"]
    # a batch goes to distinct users, one 1:1 conversation each
    per_call = rest.groupby("t_send")["recipient"]
    assert (per_call.nunique() == per_call.size()).all()
    assert not rest["is_group"].any()
    report = check_trace(r.trace)  # what `immodel check` says, REST messages included
    assert report.lost == report.duplicates == report.order_violations == 0
    assert s["deliveries"] == s["deliveries_expected"] == len(r.messages)
    assert s["rest_latency_p99_ms"] is not None and s["user_latency_p99_ms"] is not None


def test_a_call_that_times_out_is_retried_with_the_same_ids_and_stored_once():
    # the logic node answers 15 s late while the call's timeout is 10 s: the backend calls
    # again, and the dedup window answers with the original reply
    world, msgs = _run_quiet(
        **{
            "workload.rest_broadcasts": [3.0],
            "faults": [{"kind": "slow_server", "at_s": 2.0, "down_s": 10.0, "extra_ms": 15000.0}],
        }
    )
    s = world.backend.summary()
    assert s["rest_retries"] >= 1 and s["rest_calls"] == s["rest_retries"] + 1
    assert world.counters["dedup_hits"] >= 1
    assert (msgs["stored_copies"] == 1).all()
    assert (msgs["copies"] == 1).all()
    assert (msgs["attempts"] == 1 + s["rest_retries"]).all()


def test_the_same_seed_gives_the_same_rest_records():
    over = {
        "workload.users": 30,
        "duration_s": 5.0,
        "workload.rest_rate_per_s": 20.0,
        "workload.rest_broadcasts": [1.0],
        "server.rest_max_calls_per_s": 5,
    }
    a = immodel.run(Scenario.load("baseline", over))
    b = immodel.run(Scenario.load("baseline", over))
    assert a.summary["rest_refused"] > 0  # the rate limit and the retries took part
    for name in ("messages", "requests", "load", "trace"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    sa = {k: v for k, v in a.summary.items() if k != "wall_s"}
    sb = {k: v for k, v in b.summary.items() if k != "wall_s"}
    assert sa == sb


def test_without_rest_keys_the_backend_does_nothing():
    world, msgs = _run_quiet()
    assert world.backend.summary() == {
        "rest_calls": 0,
        "rest_refused": 0,
        "rest_retries": 0,
        "rest_gave_up": 0,
        "rest_calls_offered": 0,
        "rest_messages": 0,
        "rest_calls_max_per_s": 0,
    }
    assert msgs.empty or (msgs["origin"] == "sdk").all()


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("workload.rest_broadcasts", [-1.0], "workload.rest_broadcasts"),
        ("workload.rest_broadcasts", ["soon"], "workload.rest_broadcasts"),
        ("workload.rest_broadcasts", [math.inf], "workload.rest_broadcasts"),
        ("workload.rest_broadcasts", [60.0], "[0, duration_s)"),
        ("workload.rest_rate_per_s", -1.0, "workload.rest_rate_per_s"),
        ("workload.rest_batch_size", 0, "workload.rest_batch_size"),
        ("workload.rest_batch_size", 501, "workload.rest_batch_size"),
        ("server.rest_max_calls_per_s", 0, "server.rest_max_calls_per_s"),
        ("workload.rest_keep_alive", "yes", "workload.rest_keep_alive"),
        ("workload.rest_max_retries", -2, "workload.rest_max_retries"),
    ],
)
def test_bad_rest_keys_are_refused_naming_the_key(key, value, fragment):
    with pytest.raises(ConfigError, match="rest") as info:
        Scenario.load("baseline", {key: value})
    assert fragment in str(info.value)


def test_a_bad_rest_key_on_the_command_line_is_one_error_line_and_exit_2(capsys):
    assert main(["run", "baseline", "--set", "workload.rest_broadcasts=[-5]"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: workload.rest_broadcasts")


def test_the_records_say_which_entry_each_message_took():
    world = World(quiet(**{"workload.rest_broadcasts": [1.0]}))
    world.inject(2.0, 0, 1)
    world.run()
    msgs = world.rec.messages_frame()
    by_origin = msgs.groupby("origin")["sender"].unique()
    assert list(by_origin.loc["rest"]) == [ADMIN_UID]
    assert list(by_origin.loc["sdk"]) == [0]


def test_the_admin_broadcast_scenario_reaches_every_user_beside_user_traffic():
    r = immodel.run(Scenario.load("admin-broadcast", {"workload.users": 60, "duration_s": 30.0}))
    s = r.summary
    bc = r.messages[r.messages["conversation"] == "broadcast"]
    assert sorted(bc["recipient"]) == list(range(60))
    assert bc["t_first_show"].notna().all()
    assert s["lost"] == s["duplicates"] == s["order_violations"] == 0
    assert (r.messages["origin"] == "sdk").any() and s["user_latency_p99_ms"] is not None


# --- the backend gives up after workload.rest_max_retries refused retries -----------------


def _overloaded(max_retries: int):
    """15 single calls/s offered against a limit of 5/s for 10 s: most calls are refused;
    the automatic drain lasts until the backlog is admitted."""
    return _run_quiet(
        **{
            "workload.rest_rate_per_s": 15.0,
            "server.rest_max_calls_per_s": 5,
            "workload.rest_max_retries": max_retries,
            "duration_s": 10.0,
            "drain_s": "auto",
        }
    )


@pytest.mark.parametrize("max_retries", [0, 2])
def test_a_call_refused_after_its_last_retry_fails_its_messages_as_given_up(max_retries):
    world, msgs = _overloaded(max_retries)
    s = world.backend.summary()
    rest = msgs[msgs["origin"] == "rest"]
    gave_up = rest[rest["failure_reason"] == "rest_gave_up"]
    assert s["rest_gave_up"] > 0
    assert len(gave_up) == s["rest_gave_up"]  # single calls: one message each
    assert gave_up["send_failed"].all() and not gave_up["stored"].any()
    assert (gave_up["attempts"] == max_retries + 1).all()
    # every refusal is followed by a retry or ends its call (no timeouts here)
    assert s["rest_refused"] == s["rest_retries"] + s["rest_gave_up"]
    # every call ends: admitted or given up
    assert s["rest_calls"] + s["rest_gave_up"] == s["rest_calls_offered"]
    stored = rest[rest["stored"]]
    assert (stored["failure_reason"] == "").all() and stored["t_first_show"].notna().all()


def test_without_a_retry_budget_every_refused_call_is_retried_until_admitted():
    world, msgs = _overloaded(-1)
    s = world.backend.summary()
    assert s["rest_gave_up"] == 0 and s["rest_refused"] == s["rest_retries"] > 0
    assert msgs.loc[msgs["origin"] == "rest", "stored"].all()
