from __future__ import annotations

import json
from pathlib import Path

import pytest

from atsd.cli import main
from atsd.config import EX_CONFIG, Config, ConfigError, load, parse

ROOT = Path(__file__).resolve().parent.parent


def errors(toml: str, tmp_path: Path) -> list[str]:
    p = tmp_path / "config.toml"
    p.write_text(toml)
    with pytest.raises(ConfigError) as exc:
        load(p)
    return exc.value.problems


def test_example_config_is_complete_and_valid():
    cfg = load(ROOT / "config.example.toml")
    assert cfg == Config(path=cfg.path)  # the example shows every default


def test_range_error_names_file_section_key_and_values(tmp_path):
    errs = errors("[comfort]\nmin_c = 24\nmax_c = 23\n", tmp_path)
    assert errs == [f"{tmp_path / 'config.toml'}: [comfort] min_c must be below max_c (got 24 >= 23)"]


def test_unknown_key_suggests_the_right_one(tmp_path):
    (err,) = errors("[heat_pump]\nrated_kw = 8\n", tmp_path)
    assert "[heat_pump] rated_kw: unknown key; did you mean 'rated_heat_kw'?" in err


def test_unknown_section_is_an_error(tmp_path):
    (err,) = errors("[comfrot]\nmin_c = 20\n", tmp_path)
    assert "comfrot: unknown key; did you mean 'comfort'?" in err


def test_wrong_type_says_what_is_expected(tmp_path):
    (err,) = errors("[device]\nlatitude = \"north\"\n", tmp_path)
    assert "[device] latitude: must be a number (got 'north')" in err


def test_literal_choices_are_listed(tmp_path):
    (err,) = errors("[planner]\nslot_minutes = 30\n", tmp_path)
    assert "slot_minutes: must be one of 15, 60 (got 30)" in err


def test_missing_required_key_in_a_list_table(tmp_path):
    errs = errors("[[sensors]]\nkind = \"onewire\"\n", tmp_path)
    assert any("[sensors[0]] name: is required" in e for e in errs)


def test_kind_specific_requirements(tmp_path):
    errs = errors("[[sensors]]\nname = \"a\"\nkind = \"mqtt\"\n", tmp_path)
    assert any("kind = 'mqtt' needs topic" in e for e in errs)


def test_every_problem_is_reported_at_once(tmp_path):
    errs = errors("[comfort]\nmin_c = 24\nmax_c = 23\n[web]\nport = 0\n[device]\ntimezone = \"Mars/Base\"\n", tmp_path)
    assert len(errs) == 3


def test_toml_syntax_error_names_the_file(tmp_path):
    (err,) = errors("[device\n", tmp_path)
    assert err.startswith(f"{tmp_path / 'config.toml'}: TOML syntax error")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load(tmp_path / "nope.toml")


def test_issue_example_mqtt_actuator_parses():
    cfg = parse({"mqtt": {"host": "127.0.0.1", "port": 1883},
                 "actuator": {"kind": "mqtt", "topic": "heatpump/mode/set",
                              "payloads": {"OFF": "off", "ECO": "eco", "NORMAL": "normal", "BOOST": "boost"}}})
    assert cfg.actuator.payloads["NORMAL"] == "normal"


def test_secrets_are_redacted():
    cfg = parse({"web": {"token": "hunter2"}, "mqtt": {"password": "pw"}})
    text = json.dumps(cfg.redacted())
    assert "hunter2" not in text
    assert "pw\"" not in text
    assert "***" in text


def test_check_config_exit_codes(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text("[device]\ndevice_id = \"h1\"\n")
    assert main(["check-config", "--config", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text("[comfort]\nmin_c = 24\nmax_c = 23\n[web]\nport = 0\n")
    assert main(["check-config", "--config", str(bad)]) == EX_CONFIG
    err = capsys.readouterr().err
    assert "min_c must be below max_c" in err
    assert "port must be within" in err
