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


# --- drain_s = "auto" ------------------------------------------------------------------


def test_drain_defaults_to_auto_and_accepts_auto_or_a_number():
    assert KEYS["drain_s"].default == "auto"
    assert Scenario.load({})["drain_s"] == "auto"
    assert Scenario.load({}, ["drain_s=auto"])["drain_s"] == "auto"
    assert Scenario.load({}, {"drain_s": 0})["drain_s"] == 0.0
    assert Scenario.load({}, {"drain_s": 12})["drain_s"] == 12.0


@pytest.mark.parametrize("value", ["automatic", "", -1.0, float("inf"), True, [30]])
def test_a_drain_other_than_auto_or_a_number_from_0_is_refused(value):
    with pytest.raises(ConfigError) as err:
        Scenario.load({}, {"drain_s": value})
    assert "drain_s must be 'auto' or a number ≥ 0" in str(err.value)


def test_resolved_replaces_auto_by_the_required_drain_and_keeps_a_number():
    from immodel.sim.faults import required_drain_s

    auto = Scenario.load("lossy-mobile")
    resolved = auto.resolved()
    assert resolved["drain_s"] == required_drain_s(auto) > 0
    assert not resolved.drain_is_auto and auto.drain_is_auto
    assert {k: v for k, v in resolved.values.items() if k != "drain_s"} == {
        k: v for k, v in auto.values.items() if k != "drain_s"
    }
    fixed = Scenario.load("lossy-mobile", {"drain_s": 7.0})
    assert fixed.resolved() is fixed


def test_auto_drain_on_a_network_that_loses_everything_is_a_config_error():
    scenario = Scenario.load("baseline", {"network.downlink_loss": 1.0})
    with pytest.raises(ConfigError, match="drain_s: the required drain cannot be derived"):
        scenario.resolved()


# --- mistakes that used to pass silently ----------------------------------------------


def test_a_float_for_an_integer_key_is_refused_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"workload.users must be an integer .* got 1000.0"):
        Scenario.load("baseline", {"workload.users": 1e3})
    with pytest.raises(ConfigError, match=r"workload\.users must be an integer"):
        Scenario.load("baseline", ["workload.users=1e3"])
    path = tmp_path / "s.toml"
    path.write_text("[workload]\nusers = 1e3\n")
    with pytest.raises(ConfigError, match=r"workload.users .*write 1000"):
        Scenario.load(path)


def test_an_empty_scenario_file_is_refused(tmp_path):
    for text in ("", "\n# only a comment\n"):
        path = tmp_path / "empty.toml"
        path.write_text(text)
        with pytest.raises(ConfigError, match="sets no keys"):
            Scenario.load(path)


def test_a_directory_given_as_a_scenario_file_is_named_as_such(tmp_path):
    with pytest.raises(ConfigError, match="is a directory, not a scenario file"):
        Scenario.load(tmp_path)
    (tmp_path / "runs.toml").mkdir()
    with pytest.raises(ConfigError, match="is a directory, not a scenario file"):
        Scenario.load(tmp_path / "runs.toml")


def test_a_fault_after_the_end_of_an_explicit_drain_is_refused():
    crash = {"kind": "server_crash", "at_s": 100, "down_s": 5}
    with pytest.raises(ConfigError, match=r"faults\[0\].at_s must be < duration_s \+ drain_s"):
        Scenario.load("baseline", {"duration_s": 60.0, "drain_s": 40.0, "faults": [crash]})
    # Just inside the run is fine, and with "auto" the drain grows to cover the fault.
    Scenario.load("baseline", {"duration_s": 60.0, "drain_s": 40.1, "faults": [crash]})
    auto = Scenario.load("baseline", {"duration_s": 60.0, "faults": [crash]}).resolved()
    assert auto["duration_s"] + auto["drain_s"] > 105


def test_web_share_with_a_transport_that_ignores_it_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"transport\.web_share applies only to"):
        Scenario.load("baseline", {"transport.web_share": 0.5})
    with pytest.raises(ConfigError, match=r"transport\.web_share applies only to"):
        Scenario.load("baseline", ["transport.kind=push", "transport.web_share=0.5"])
    path = tmp_path / "s.toml"
    path.write_text('[transport]\nkind = "long_poll"\nweb_share = 0.2\n')
    with pytest.raises(ConfigError, match="web_share"):
        Scenario.load(path)
    # Hybrid takes it; switching the hybrid built-in to push with --set is not a mistake
    # of the user's (the file's web_share simply no longer applies).
    assert Scenario.load("hybrid", {"transport.web_share": 0.5})["transport.web_share"] == 0.5
    assert Scenario.load("hybrid", ["transport.kind=push"])["transport.kind"] == "push"
    # A resolved scenario.toml states every key and re-loads whatever its transport.
    resolved = tmp_path / "resolved.toml"
    resolved.write_text(Scenario.load("hybrid", ["transport.kind=push"]).to_toml())
    assert Scenario.load(resolved)["transport.kind"] == "push"


def test_keys_reference_lists_every_schema_key_with_type_default_and_allowed_values():
    from immodel.scenario import keys_reference

    rows = keys_reference()
    assert [r["key"] for r in rows] == [k.name for k in SCHEMA]
    by_key = {r["key"]: r for r in rows}
    assert by_key["workload.users"]["table"] == "workload"
    assert by_key["workload.users"]["type"] == "integer"
    assert by_key["workload.users"]["default"] == 1000
    assert by_key["transport.kind"]["allowed"].startswith("one of short_poll")
    assert by_key["drain_s"]["table"] == "" and by_key["drain_s"]["default"] == "auto"
    for row in rows:
        assert row["meaning"] and row["allowed"], row["key"]
