"""Config precedence, parsing and one-line errors (no server needed)."""
import pytest

from fastcache.config import Config, ConfigError, load, parse_flags


def test_defaults():
    c = Config()
    assert c["port"] == 6379 and c["bind"] == ["127.0.0.1"] and c["databases"] == 16
    assert c["protected-mode"] is True and c["requirepass"] == ""
    assert c.render("save") == "3600 1 300 100 60 10000"


def test_flags_take_several_words_like_redis_server():
    path, pairs = parse_flags(["conf.toml", "--port", "7000", "--save", "3600", "1", "300", "100",
                               "--bind", "127.0.0.1", "::1"])
    assert path == "conf.toml"
    assert pairs == [("port", "7000"), ("save", "3600 1 300 100"), ("bind", "127.0.0.1 ::1")]


def test_empty_save_disables_snapshots():
    assert load(["--save", ""], environ={})["save"] == []


def test_precedence_flags_env_file_defaults(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('port = 1111\ntimeout = 5\nmaxclients = 7\nsave = [900, 1]\n')
    env = {"FASTCACHE_TIMEOUT": "6", "FASTCACHE_MAXCLIENTS": "8"}
    c = load([str(f), "--maxclients", "9"], environ=env)
    assert c["port"] == 1111          # file
    assert c["timeout"] == 6          # env over file
    assert c["maxclients"] == 9       # flag over env
    assert c["databases"] == 16       # default
    assert c["save"] == [(900, 1)]


def test_env_names_map_underscores_to_dashes():
    assert load([], environ={"FASTCACHE_PROTECTED_MODE": "no"})["protected-mode"] is False


@pytest.mark.parametrize("argv, key", [
    (["--port", "abc"], "port"),
    (["--port", "70000"], "port"),
    (["--shards", "0"], "shards"),
    (["--protected-mode", "maybe"], "protected-mode"),
    (["--proto-max-bulk-len", "12zz"], "proto-max-bulk-len"),
    (["--loglevel", "loud"], "loglevel"),
    (["--nosuchkey", "1"], "nosuchkey"),
    (["--save", "100"], "save"),
])
def test_invalid_values_name_the_key(argv, key):
    with pytest.raises(ConfigError) as info:
        load(argv, environ={})
    assert info.value.key == key
    assert "\n" not in str(info.value)


def test_bad_toml_file(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("port = = 1\n")
    with pytest.raises(ConfigError) as info:
        load([str(f)], environ={})
    assert info.value.key == "config-file"


def test_memory_units():
    c = load(["--client-query-buffer-limit", "2gb", "--proto-max-bulk-len", "1mb"], environ={})
    assert c["client-query-buffer-limit"] == 2 * 1024 ** 3
    assert c["proto-max-bulk-len"] == 1024 ** 2


def test_example_config_file_loads():
    import os
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    c = load([os.path.join(here, "config", "fastcache.toml")], environ={})
    assert c["port"] == 6379 and c["proto-max-bulk-len"] == 512 * 1024 ** 2
