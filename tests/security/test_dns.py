"""Name resolution on the connect path: local DNS (cached, hijackable) and HTTPDNS."""

import math

import immodel
from immodel.scenario import Scenario

# Users come and go (mean 20 s online, 10 s offline) so that a short run has hundreds of
# connects; constant latencies and service times make connect times exact sums.
CHURN = {
    "workload.users": 150,
    "workload.send_rate_per_user": 0.02,
    "workload.mean_online_s": 20.0,
    "workload.mean_offline_s": 10.0,
    "duration_s": 90.0,
    "network.latency_ms": 40.0,
    "server.service_dist": "constant",
    "security.dns_latency_ms": 30.0,
    "security.httpdns_latency_ms": 70.0,
}


def _run(**keys):
    return immodel.run(Scenario.load("baseline", {**CHURN, **keys}))


def test_hijacked_connections_follow_the_binomial_of_local_lookups():
    p = 0.2
    s = _run(
        **{"security.dns": "local", "security.dns_hijack_prob": p, "security.dns_cache_ttl_s": 0.0}
    ).summary
    n = s["dns_lookups"]
    assert n > 300  # enough connects for the band to mean something
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    assert abs(s["hijacked_connections"] - mean) < 4 * sd
    # every hijacked encrypted connect was retried through HTTPDNS and nothing was lost
    assert s["httpdns_requests"] == s["hijacked_connections"]
    assert s["exposed_messages"] == 0
    assert s["lost"] == _run().summary["lost"]


def test_httpdns_is_never_hijacked():
    s = _run(**{"security.dns": "httpdns", "security.dns_hijack_prob": 0.5}).summary
    assert s["hijacked_connections"] == 0
    assert s["dns_lookups"] == 0
    assert s["httpdns_requests"] > 0


def test_httpdns_falls_back_to_local_dns_when_it_fails():
    s = _run(
        **{
            "security.dns": "httpdns",
            "security.httpdns_fail_prob": 1.0,
            "security.dns_cache_ttl_s": 0.0,
        }
    ).summary
    # every failed request fell back to one lookup, but for those still in flight (their
    # 70 ms not over) when the run ended: about 5 requests/s × 0.07 s = 0.35 expected
    assert s["httpdns_requests"] > 300
    assert 0 <= s["httpdns_requests"] - s["dns_lookups"] <= 3


def test_a_hijacked_plaintext_client_talks_to_the_attacker():
    s = _run(
        **{
            "security.dns": "local",
            "security.dns_hijack_prob": 0.3,
            "security.channel": "plaintext",
            "security.dns_cache_ttl_s": 0.0,
        }
    ).summary
    assert s["hijacked_connections"] > 0
    assert s["httpdns_requests"] == 0  # nothing failed, so nothing was retried
    assert s["exposed_messages"] > 0


def test_a_lookup_adds_its_latency_to_the_median_connect():
    """With constant latencies every connect without a hijack takes the same time, plus
    the lookup's 30 ms (local, uncached) or 70 ms (HTTPDNS)."""
    none = _run().summary["connect_latency_p50_ms"]
    local = _run(**{"security.dns": "local", "security.dns_cache_ttl_s": 0.0}).summary
    http = _run(**{"security.dns": "httpdns", "security.dns_cache_ttl_s": 0.0}).summary
    assert math.isclose(local["connect_latency_p50_ms"] - none, 30.0, abs_tol=0.5)
    assert math.isclose(http["connect_latency_p50_ms"] - none, 70.0, abs_tol=0.5)


def test_a_cached_answer_saves_the_lookup():
    cached = _run(**{"security.dns": "local", "security.dns_cache_ttl_s": 3600.0}).summary
    fresh = _run(**{"security.dns": "local", "security.dns_cache_ttl_s": 0.0}).summary
    assert cached["dns_lookups"] <= 150  # at most one per user
    assert fresh["dns_lookups"] > cached["dns_lookups"]
