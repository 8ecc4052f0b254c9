"""CONFIG GET / SET / RESETSTAT / REWRITE: Redis's replies, and changes that
reach every worker and take effect at once."""
import time
import tomllib

import pytest

from fastcache import config as config_module
from tests.server.conftest import client, raw
from tests.support.differential import compare
from tests.support.procs import start_fastcache_argv
from tests.support.workers import one_client_per_worker

# Keys whose defaults fastcache and the reference server share.
SHARED_DEFAULTS = [
    "maxclients", "timeout", "databases", "hz", "tcp-keepalive", "tcp-backlog",
    "slowlog-log-slower-than", "slowlog-max-len", "proto-max-bulk-len",
    "client-query-buffer-limit", "loglevel", "requirepass", "protected-mode", "maxmemory",
    "maxmemory-policy", "appendonly", "notify-keyspace-events", "cluster-enabled", "nosuch",
]

# Keys whose values differ between the two test servers (or only fastcache has).
DIFFERENT = {"port", "dir", "save", "bind", "logfile", "shards", "snapshot-zstd-level",
             "repl-compression", "repl-zstd-level", "repl-send-policy", "repl-batch-max-records",
             "repl-batch-max-bytes", "repl-batch-max-delay-us", "repl-max-replicas",
             "client-handoff"}


def test_get_matches_redis(pair):
    compare(pair, [("CONFIG", "GET", key) for key in SHARED_DEFAULTS] + [
        ("CONFIG", "GET", "MAXCLIENTS"), ("CONFIG", "GET", "slowlog-max-len", "slowlog-max-len"),
        ("CONFIG", "GET", "maxclient?"), ("CONFIG", "GET", "[m]axclients"),
        ("CONFIG", "GET"), ("CONFIG", "GET", "no*such*"),
    ])


def test_patterns_match_redis(fc, redis_ref):
    known = set(client(fc.port).config_get("*"))
    for args in (("slowlog-*",), ("*max*len*",), ("MAXCLIENTS", "Timeout", "hz*"), ("*",)):
        real = client(redis_ref.port).config_get(*args)
        shared = {k: v for k, v in real.items() if k.lower() in known and k not in DIFFERENT}
        mine = {k: v for k, v in client(fc.port).config_get(*args).items() if k not in DIFFERENT}
        assert mine == shared, args


def test_errors_match_redis(pair):
    try:
        compare(pair, [
            ("CONFIG",), ("CONFIG", "nosuch"), ("CONFIG", "HELP"), ("CONFIG", "HELP", "x"),
            ("CONFIG", "SET", "maxclients"), ("CONFIG", "SET", "maxclients", "0"),
            ("CONFIG", "SET", "maxclients", "abc"), ("CONFIG", "SET", "maxclients", "1e3"),
            ("CONFIG", "SET", "maxclients", " 100"), ("CONFIG", "SET", "maxclients", "+100"),
            ("CONFIG", "SET", "maxclients", "10", "timeout"),
            ("CONFIG", "SET", "nosuch", "x"), ("CONFIG", "SET", "maxclients", "100", "nosuch", "x"),
            ("CONFIG", "SET", "maxclients", "100", "maxclients", "200"),
            ("CONFIG", "SET", "maxclients", "100", "MAXCLIENTS", "200"),
            ("CONFIG", "SET", "timeout", "10", "maxclients", "0"),
            ("CONFIG", "SET", "hz", "-1"), ("CONFIG", "SET", "timeout", "1.5"),
            ("CONFIG", "SET", "loglevel", "loud"), ("CONFIG", "SET", "protected-mode", "maybe"),
            ("CONFIG", "SET", "protected-mode", " yes"),
            ("CONFIG", "SET", "proto-max-bulk-len", "1"),
            ("CONFIG", "SET", "proto-max-bulk-len", "1.5mb"),
            ("CONFIG", "SET", "client-query-buffer-limit", "1k"),
            ("CONFIG", "SET", "slowlog-log-slower-than", "-2"),
            ("CONFIG", "SET", "slowlog-max-len", "-1"),
            ("CONFIG", "SET", "save", "100"), ("CONFIG", "SET", "save", "a b"),
            ("CONFIG", "SET", "databases", "3"), ("CONFIG", "SET", "tcp-backlog", "10"),
            ("CONFIG", "SET", "hz", "1000"), ("CONFIG", "GET", "hz"),
            ("CONFIG", "SET", "hz", "0"), ("CONFIG", "GET", "hz"),
            ("CONFIG", "SET", "loglevel", "WARNING"), ("CONFIG", "GET", "loglevel"),
            ("CONFIG", "SET", "proto-max-bulk-len", "2MB"), ("CONFIG", "GET", "proto-max-bulk-len"),
            ("CONFIG", "SET", "appendonly", "no"), ("CONFIG", "RESETSTAT", "x"),
            ("CONFIG", "REWRITE"),
        ])
    finally:
        for c in pair:
            c.call("CONFIG", "SET", "hz", "10", "loglevel", "notice",
                   "proto-max-bulk-len", "512mb")


@pytest.fixture
def restore(fc):
    """Puts back the settings a test changes (keys listed by the test)."""
    keys = []
    before = client(fc.port).config_get("*")
    yield keys
    c = client(fc.port)
    for key in keys:
        c.config_set(key, before[key])


def test_set_reaches_every_worker(fc, restore):
    restore.extend(["slowlog-max-len", "timeout"])
    clients = one_client_per_worker(lambda: client(fc.port), fc.shards)
    assert clients[0].config_set("slowlog-max-len", 77) is True
    assert clients[0].execute_command("CONFIG", "SET", "timeout", "300", "slowlog-max-len", "78")
    for c in clients.values():
        assert c.config_get("slowlog-*") == {"slowlog-max-len": "78",
                                             "slowlog-log-slower-than": "10000"}
        assert c.config_get("timeout") == {"timeout": "300"}


def test_set_is_all_or_nothing(fc, restore):
    restore.append("maxclients")
    clients = one_client_per_worker(lambda: client(fc.port), fc.shards)
    with pytest.raises(Exception, match="'timeout'"):
        clients[0].execute_command("CONFIG", "SET", "maxclients", "50", "timeout", "-1")
    for c in clients.values():
        assert c.config_get("maxclients") == {"maxclients": "10000"}


def test_requirepass_applies_to_new_connections(fc, restore):
    admin = raw(fc.port)
    assert admin.call("CONFIG", "SET", "requirepass", "s3cret") == b"+OK\r\n"
    try:
        assert admin.call("PING") == b"+PONG\r\n"  # already authenticated
        for _ in range(2 * fc.shards):  # land on every worker
            newcomer = raw(fc.port)
            assert newcomer.call("GET", "x") == b"-NOAUTH Authentication required.\r\n"
            assert newcomer.call("AUTH", "s3cret") == b"+OK\r\n"
            newcomer.close()
    finally:
        assert admin.call("CONFIG", "SET", "requirepass", "") == b"+OK\r\n"
    assert raw(fc.port).call("GET", "x") == b"$-1\r\n"


def test_maxclients_applies_at_once(fc, restore):
    restore.append("maxclients")
    admin = client(fc.port)
    connected = admin.info("clients")["connected_clients"]
    admin.config_set("maxclients", connected + 1)
    extra = raw(fc.port)
    assert extra.call("PING") == b"+PONG\r\n"
    refused = raw(fc.port)
    assert refused.read_reply() == b"-ERR max number of clients reached\r\n"
    extra.close()


def test_bulk_limit_applies_to_open_connections(fc, restore):
    restore.append("proto-max-bulk-len")
    c = raw(fc.port)
    assert c.call("CONFIG", "SET", "proto-max-bulk-len", "1mb") == b"+OK\r\n"
    c.send(b"*2\r\n$3\r\nGET\r\n$2000000\r\n")
    assert c.read_reply() == b"-ERR Protocol error: invalid bulk length\r\n"


def test_timeout_closes_idle_clients(fc, restore):
    restore.append("timeout")
    idle = raw(fc.port)
    assert idle.call("PING") == b"+PONG\r\n"
    client(fc.port).config_set("timeout", 1)
    deadline = time.monotonic() + 10
    with pytest.raises(ConnectionError):
        while time.monotonic() < deadline:
            idle.call("PING")
            time.sleep(1.5)


def test_rewrite_updates_the_config_file(tmp_path):
    path = tmp_path / "fastcache.toml"
    path.write_text("# my settings\nmaxclients = 100   # a comment\n# hz = 20\n")
    server = start_fastcache_argv("--shards", "2", config_file=str(path))
    try:
        c = client(server.port)
        c.config_set("maxclients", 123)
        c.config_set("slowlog-max-len", 5)
        c.config_set("save", "100 10")
        assert c.config_rewrite() == "OK"
    finally:
        server.stop()
    text = path.read_text()
    assert text.startswith("# my settings\nmaxclients = 123\n# hz = 20\n")
    table = tomllib.loads(text)
    assert table["slowlog-max-len"] == 5 and table["save"] == "100 10"
    loaded = config_module.load([str(path)], environ={})
    assert loaded["maxclients"] == 123 and loaded["save"] == [(100, 10)]
