"""Live-broadcast rooms in the simulator (immodel.sim.live): what viewers are shown, when,
what they miss, and that live traffic stays out of reliable delivery's metrics."""

from __future__ import annotations

import pandas as pd
import pytest

from immodel import Scenario, load_run, run
from immodel.analysis.checker import check_trace
from immodel.cli import main

LIVE_OFF = {
    "live_rooms": 0,
    "live_messages_offered": 0,
    "live_deliveries": 0,
    "live_missed": 0,
    "live_latency_p50_ms": None,
}


def live(**overrides) -> Scenario:
    """A small deployment with live rooms and constant latency and service times."""
    values = {
        "workload.users": 20,
        "duration_s": 6.0,
        "network.latency_ms": 40.0,
        "server.service_dist": "constant",
        "workload.live_rooms": 2,
        "workload.live_audience": 30.0,
        "workload.live_send_rate": 60.0,
        "workload.live_priority": {"high": 1, "normal": 1, "low": 2},
        "transport.kind": "hybrid",
    }
    values.update(overrides)
    return Scenario.load("baseline", values)


def test_without_live_rooms_the_live_keys_are_empty_and_no_live_records_exist():
    r = run(Scenario.load("baseline", {"workload.users": 20, "duration_s": 3.0}))
    for key, value in LIVE_OFF.items():
        assert r.summary[key] == value, key
    assert r.summary["live_dropped_by_priority"] == {"high": 0, "normal": 0, "low": 0}
    assert r.live_messages.empty and r.live_trace.empty


def test_live_drops_and_misses_never_count_in_lost_deliveries_or_latency():
    plain = run(live(**{"workload.live_rooms": 0}))
    # a tiny buffer and a cap far below the offered rate: most live messages are
    # dropped or missed
    busy = run(live(**{"server.live_buffer_msgs": 2, "server.live_max_msgs_per_s": 10.0}))
    assert busy.summary["live_messages_dropped"] > 0 and busy.summary["live_missed"] > 0
    assert busy.summary["lost"] == 0
    for key in ("deliveries", "deliveries_expected", "messages_sent"):
        assert busy.summary[key] == plain.summary[key], key
    assert not busy.trace["msg_id"].astype(str).str.startswith("L").any()
    assert not busy.messages["msg_id"].astype(str).str.startswith("L").any()


@pytest.mark.parametrize("kind", ["hybrid", "push"])
@pytest.mark.parametrize("mode", ["per_viewer", "cohort"])
def test_every_present_viewer_is_shown_every_accepted_message_once_in_order(kind, mode):
    r = run(
        live(
            **{
                "transport.kind": kind,
                "workload.live_viewer_mode": mode,
                "workload.live_cohorts": 7,
            }
        )
    )
    s = r.summary
    audience = 30
    assert s["live_missed"] == 0
    assert s["live_deliveries"] == s["live_messages_accepted"] * audience
    report = check_trace(r.live_trace)
    assert report.ok and report.duplicates == 0 and report.order_violations == 0
    assert report.lost == 0 and report.unexpected_deliveries == 0


@pytest.mark.parametrize("kind", ["long_poll", "push"])
def test_a_viewer_is_shown_a_message_one_publish_and_one_latency_after_its_window(kind):
    # constant 40 ms latency and service: a held poll (or a push) is answered at the
    # publish, which follows the window's end by the downlink stage (status + fan-out to
    # the one access node), and reaches the viewer 40 ms later (a worker for each
    # viewer's frame, and no reliable traffic: nothing queues)
    over = {"transport.kind": kind, "workload.live_rooms": 1, "server.access_workers": 64}
    r = run(live(**over, **{"workload.send_rate_per_user": 0.0}))
    msgs = r.live_messages.set_index("msg_id")
    deliver = r.live_trace[r.live_trace["event"] == "deliver"]
    decided = msgs.loc[deliver["msg_id"].astype(str), "t_decided"].to_numpy()
    publish_s = (0.1 + 0.02 * 1) / 1000.0
    frame_s = 0.01 / 1000.0  # the access node's downlink frame (one viewer per job)
    expected = decided + publish_s + frame_s + 0.040
    assert len(deliver) > 0
    assert (abs(deliver["t"].to_numpy() - expected) < 1e-9).all()
    # and the window's end is the next multiple of 1 s after the offer
    accepted = msgs[msgs["accepted"]]
    assert ((accepted["t_offer"] // 1.0 + 1.0 - accepted["t_decided"]).abs() < 1e-9).all()


def test_what_leaves_the_recent_buffer_before_a_poll_is_missed_and_counted():
    # 40 accepted per window into a buffer of 5: a held poll gets the batch at once, so
    # nothing is missed; but a viewer whose poll is in flight at the publish asks later
    # and finds only the last 5. With a 600 ms latency every poll is in flight at the
    # publishes that follow a response, and deliveries + missed account for everything.
    r = run(
        live(
            **{
                "workload.live_rooms": 1,
                "workload.live_send_rate": 200.0,
                "server.live_buffer_msgs": 5,
                "server.live_window_ms": 500.0,
                "network.latency_ms": 600.0,
            }
        )
    )
    s = r.summary
    assert s["live_missed"] > 0
    assert s["live_deliveries"] + s["live_missed"] == s["live_messages_accepted"] * 30


def test_viewers_who_leave_miss_what_was_on_its_way_and_joiners_keep_the_audience():
    r = run(
        live(
            **{
                "workload.live_rooms": 1,
                "workload.live_audience": 400.0,
                "workload.live_mean_stay_s": 5.0,
                "workload.live_viewer_mode": "cohort",
                "workload.live_cohorts": 20,
                "network.latency_ms": {"dist": "lognormal", "median": 80.0, "p99": 600.0},
            }
        )
    )
    s = r.summary
    horizon = s["horizon_s"]
    # joins are Poisson at 400 / 5 s per second: mean 80 × horizon, sd √ of that
    mean_joins = 400 / 5.0 * horizon
    assert abs(s["live_viewers_joined"] - mean_joins) < 4 * mean_joins**0.5
    assert s["live_viewers_left"] > 0 and s["live_missed"] > 0
    # nothing is shown to a viewer beyond what was published while it was there
    assert s["live_deliveries"] < s["live_messages_accepted"] * (400 + s["live_viewers_joined"])
    assert check_trace(r.live_trace).ok


def test_the_same_seed_gives_the_same_live_records():
    sc = live(**{"workload.live_mean_stay_s": 4.0, "workload.live_viewer_mode": "cohort"})
    a, b = run(sc), run(sc)
    for name in ("live_messages", "live_trace", "trace"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    sa = {k: v for k, v in a.summary.items() if k != "wall_s"}
    assert sa == {k: v for k, v in b.summary.items() if k != "wall_s"}
    assert not a.live_trace.empty and a.summary["live_viewers_left"] > 0
    other = run(sc.with_overrides({"seed": 2}))
    assert not other.live_trace.equals(a.live_trace)


def test_a_run_folder_keeps_the_live_records(tmp_path):
    r = run(live())
    r.write(tmp_path / "run")
    again = load_run(tmp_path / "run")
    pd.testing.assert_frame_equal(again.live_messages, r.live_messages)
    pd.testing.assert_frame_equal(again.live_trace, r.live_trace)
    assert main(["check", str(tmp_path / "run" / "live_trace.parquet")]) == 0


def test_a_duplicated_live_delivery_is_reported_but_a_dropped_one_is_not_lost():
    r = run(live(**{"server.live_max_msgs_per_s": 10.0}))
    trace = r.live_trace
    deliver = trace[trace["event"] == "deliver"]
    doubled = pd.concat([trace, deliver.iloc[[3]]], ignore_index=True)
    report = check_trace(doubled)
    assert report.duplicates == 1 and not report.ok
    assert report.lost == 0  # dropped messages: 0 lost, not r.summary's drops


@pytest.mark.parametrize(
    ("setting", "fragment"),
    [
        ("workload.live_priority={urgent=1}", "workload.live_priority: unknown entry 'urgent'"),
        ("workload.live_priority={high=-1}", "workload.live_priority.high must be a number ≥ 0"),
        ("workload.live_priority={high=0,low=0}", "workload.live_priority must have a positive"),
        ("workload.live_viewer_mode=all", "workload.live_viewer_mode must be one of"),
        ("server.live_max_msgs_per_s=0", "server.live_max_msgs_per_s must be"),
        ("workload.live_audience=-3", "workload.live_audience must be"),
        ("workload.live_rooms=1.5", "workload.live_rooms must be an integer"),
    ],
)
def test_a_bad_live_key_exits_2_with_one_error_line_naming_it(setting, fragment, capsys):
    assert main(["run", "baseline", "--set", setting, "--set", "workload.users=5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], err


def test_a_cap_too_small_for_its_window_is_refused(capsys):
    argv = ["run", "baseline", "--set", "workload.live_rooms=1"]
    argv += ["--set", "server.live_max_msgs_per_s=2", "--set", "server.live_window_ms=200"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "server.live_max_msgs_per_s × server.live_window_ms" in err[0]


def test_the_auto_drain_lets_the_last_window_be_decided_and_shown():
    # a 5 s window: the last one ends up to 5 s after the sending period
    r = run(live(**{"server.live_window_ms": 5000.0, "server.live_max_msgs_per_s": 20.0}))
    s = r.summary
    assert s["live_messages_offered"] == s["live_messages_accepted"] + s["live_messages_dropped"]
    assert r.live_messages["t_decided"].notna().all()
    assert s["live_missed"] == 0
    assert s["live_deliveries"] == s["live_messages_accepted"] * 30  # 30 viewers a room


def test_the_built_in_live_scenario_drops_low_priority_first():
    r = run(Scenario.load("live", {"workload.live_audience": 200.0, "duration_s": 4.0}))
    s = r.summary
    offered, dropped = s["live_offered_by_priority"], s["live_dropped_by_priority"]
    assert s["live_rooms"] == 1 and s["live_messages_dropped"] > 0
    # 100 msg/s against 40: low loses most, normal some, high (20/s) nothing in practice
    # (a window with more than 40 high-priority messages has probability 1e-5)
    assert dropped["low"] / offered["low"] > dropped["normal"] / offered["normal"]
    assert dropped["high"] == 0
