"""Scenario loading and validation: defaults, overrides, errors that name the key."""

from __future__ import annotations

import pytest

from immodel.errors import ConfigError
from immodel.scenario import KEYS, SCHEMA, Scenario, builtin_scenarios, parse_override


def test_defaults_describe_a_plain_deployment():
    sc = Scenario.load({})
    assert sc["workload.online_fraction"] == 1.0
    assert sc["workload.mean_online_s"] == 0.0
    assert sc["faults"] == ()
    for mechanism in ("uplink_retry", "server_dedup", "downlink_ack", "client_dedup", "sync"):
        assert sc[f"reliability.{mechanism}"] is True
    for optional in ("callback_enabled", "screening_enabled", "require_friendship"):
        assert sc[f"server.{optional}"] is False


def test_every_builtin_scenario_loads_and_is_documented():
    names = builtin_scenarios()
    assert {"baseline", "short-poll", "long-poll", "hybrid", "lossy-mobile"} <= set(names)
    for name, description in names.items():
        assert description, f"{name} has no one-line description"
        assert Scenario.load(name)["name"] == name


def test_nested_tables_and_dotted_overrides_mean_the_same():
    nested = Scenario.load({"network": {"downlink_loss": 0.1}})
    dotted = Scenario.load({}, {"network.downlink_loss": 0.1})
    assert nested["network.downlink_loss"] == dotted["network.downlink_loss"] == 0.1


def test_set_strings_are_parsed_as_toml_values():
    assert parse_override("network.uplink_loss=0.05") == ("network.uplink_loss", 0.05)
    assert parse_override("reliability.sync=false") == ("reliability.sync", False)
    assert parse_override("transport.kind=push") == ("transport.kind", "push")
    sc = Scenario.load("baseline", ["transport.kind=long_poll", "workload.users=10"])
    assert sc["transport.kind"] == "long_poll"
    assert sc["workload.users"] == 10


def test_resolved_toml_reloads_to_an_equal_scenario(tmp_path):
    sc = Scenario.load(
        "lossy-mobile",
        {"faults": [{"kind": "server_crash", "at_s": 5, "down_s": 2}], "workload.users": 7},
    )
    path = tmp_path / "resolved.toml"
    path.write_text(sc.to_toml())
    again = Scenario.load(path)
    assert again.values == sc.values


def test_seed_argument_replaces_the_file_seed():
    assert Scenario.load("baseline", seed=42)["seed"] == 42


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"network.downlink_los": 0.1}, "did you mean 'network.downlink_loss'"),
        ({"network.downlink_loss": 1.5}, "network.downlink_loss must be a number in [0, 1]"),
        ({"network.uplink_loss": -0.1}, "network.uplink_loss must be a number in [0, 1]"),
        ({"transport.poll_interval_s": -2}, "transport.poll_interval_s must be a number in (0"),
        ({"transport.poll_interval_s": 0}, "transport.poll_interval_s"),
        ({"transport.kind": "pigeon"}, "transport.kind must be one of short_poll, long_poll"),
        ({"transport.kind": "long-poll"}, "did you mean 'long_poll'"),
        ({"workload.users": 2.5}, "workload.users must be an integer"),
        ({"reliability.sync": "yes"}, "reliability.sync must be true or false"),
        ({"faults": [{"kind": "meteor"}]}, "faults[0].kind must be one of"),
        ({"faults": [{"kind": "server_crash"}]}, "needs field 'at_s'"),
        ({"faults": [{"kind": "server_crash", "at_s": 1, "down": 2}]}, "unknown field 'down'"),
        ({"network.latency_ms": {"dist": "lognormal", "median": 40}}, "needs field 'p99'"),
        ({"network.latency_ms": {"dist": "lognormal", "median": 50, "p99": 10}}, "median ≤ p99"),
        ({"workload.mean_online_s": 10.0}, "both be > 0"),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(overrides, fragment):
    with pytest.raises(ConfigError) as err:
        Scenario.load("baseline", overrides)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_file_or_name_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        Scenario.load(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="did you mean 'baseline'"):
        Scenario.load("baseline2")


def test_invalid_toml_is_a_config_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("duration_s = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Scenario.load(path)


def test_schema_keys_are_unique_and_documented():
    assert len(KEYS) == len(SCHEMA)
    for key in SCHEMA:
        assert key.doc
