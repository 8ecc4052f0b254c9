"""SAVE, BGSAVE, BGREWRITEAOF, LASTSAVE, INFO persistence, CONFIG SET appendonly /
appendfsync and SHUTDOWN SAVE/NOSAVE on a real multi-shard server, against
redis-server where the replies are comparable."""
import os
import shutil
import time

import pytest

from fastcache.persistence.wal import Wal
from tests.support import servers
from tests.support.differential import compare
from tests.support.persist import DurableServer
from tests.support.resp import RawClient
from tests.support.shardkeys import keys_by_shard

NO_SAVE = ("--appendonly", "no", "--save", "")
SHUTDOWN_FAILED = b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n"


@pytest.fixture(scope="module")
def server():
    s = DurableServer(*NO_SAVE, shards=2).start()
    yield s
    s.cleanup()


def info(port):
    """INFO persistence as [(field, value)] in the server's order."""
    text = RawClient(port).call("INFO", "persistence").decode()
    return [tuple(line.split(":", 1)) for line in text.split("\r\n")[1:]
            if ":" in line]


def field(port, name):
    return dict(info(port))[name]


def wait_for(port, test, timeout=20.0):
    """Poll INFO persistence until test(fields) holds; the fields then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fields = dict(info(port))
        if test(fields):
            return fields
        time.sleep(0.02)
    raise AssertionError("INFO persistence never passed %s: %r" % (test.__name__, fields))


def shards_are(state):
    def every_shard(fields):
        return all(state in v for k, v in fields.items() if k.startswith("fastcache_shard"))
    return every_shard


def idle(fields):
    """No background save or rewrite runs or (visibly) waits to run."""
    return (fields["rdb_bgsave_in_progress"] == fields["aof_rewrite_in_progress"]
            == fields["aof_rewrite_scheduled"] == "0"
            and shards_are("child=none,scheduled=none")(fields))


def settle(port):
    return wait_for(port, idle)


def shutdown(s, *words):
    """SHUTDOWN [words]: the connection closes without a reply and the server exits 0."""
    c = RawClient(s.port)
    with pytest.raises(ConnectionError):
        c.call("SHUTDOWN", *words)
    assert s.proc.wait(20) == 0, s.output()
    s.proc = None


def one_key_per_shard(s, prefix):
    return [keys[0] for keys in keys_by_shard(s.shards, 1, prefix)]


# -- replies ----------------------------------------------------------------------------

@pytest.mark.parametrize("proto", [2, 3])
def test_error_replies_match_redis(server, redis_raw, proto):
    ours = RawClient(server.port)
    if proto == 3:
        ours.call("HELLO", "3")
        redis_raw.call("HELLO", "3")
    compare([redis_raw, ours], [
        ("SAVE", "x"), ("BGSAVE", "x"), ("BGSAVE", "SCHEDULE", "x"), ("BGSAVE", "schedulex"),
        ("BGREWRITEAOF", "x"), ("LASTSAVE", "x"),
        ("SHUTDOWN", "ABORT"), ("SHUTDOWN", "SAVE", "NOSAVE"), ("SHUTDOWN", "BOGUS"),
        ("SHUTDOWN", "NOW", "ABORT"),
    ])


def test_success_replies_match_redis(server, redis_ref, redis_raw):
    ours = RawClient(server.port)
    settle(redis_ref.port)
    settle(server.port)
    for cmd in (("SAVE",), ("BGSAVE",), ("BGREWRITEAOF",), ("BGSAVE", "SCHEDULE")):
        compare([redis_raw, ours], [cmd])
        settle(redis_ref.port)
        settle(server.port)
    assert ours.call("LASTSAVE")[:1] == b":"


def test_inside_exec_saves_are_scheduled_like_redis(server, redis_ref, redis_raw):
    ours = RawClient(server.port)
    before = [settle(port) for port in (redis_ref.port, server.port)]
    compare([redis_raw, ours], [("MULTI",), ("BGSAVE",), ("BGREWRITEAOF",), ("EXEC",)])
    for port, then in zip((redis_ref.port, server.port), before):
        def both_ran(fields):
            return (int(fields["aof_rewrites"]) > int(then["aof_rewrites"])
                    and int(fields["rdb_saves"]) > int(then["rdb_saves"]) and idle(fields))
        wait_for(port, both_ran)


def test_running_saves_are_reported_like_redis(server):
    """While a slow BGSAVE runs, then the rewrite scheduled behind it: Redis's
    refusals and schedulings, and INFO showing them."""
    c = RawClient(server.port)
    c.call("CONFIG", "SET", "snapshot-zstd-level", "19")   # slow children
    try:
        c.call("DEBUG", "POPULATE", "50000", "slow", "64")
        before = settle(server.port)
        assert c.call("BGSAVE") == b"+Background saving started\r\n"
        assert c.call("BGSAVE") == b"-ERR Background save already in progress\r\n"
        assert c.call("BGSAVE", "SCHEDULE") == b"-ERR Background save already in progress\r\n"
        assert c.call("SAVE") == b"-ERR Background save already in progress\r\n"
        assert c.call("BGREWRITEAOF") == \
            b"+Background append only file rewriting scheduled\r\n"
        state = dict(info(server.port))
        assert (state["rdb_bgsave_in_progress"], state["aof_rewrite_scheduled"]) == ("1", "1")
        assert int(state["rdb_current_bgsave_time_sec"]) >= 0

        wait_for(server.port, shards_are("child=aof"))
        assert c.call("BGREWRITEAOF") == \
            b"-ERR Background append only file rewriting already in progress\r\n"
        assert c.call("BGSAVE").startswith(b"-ERR Another child process is active (AOF?)")
        c.call("CONFIG", "SET", "snapshot-zstd-level", "1")   # running children keep 19
        assert c.call("BGSAVE", "SCHEDULE") == b"+Background saving scheduled\r\n"
        state = dict(info(server.port))
        assert (state["aof_rewrite_in_progress"], state["rdb_bgsave_in_progress"]) == ("1", "0")
        assert int(state["aof_current_rewrite_time_sec"]) >= 0

        state = settle(server.port)
        assert int(state["aof_rewrites"]) == int(before["aof_rewrites"]) + 1
        assert int(state["rdb_saves"]) == int(before["rdb_saves"]) + 3
        assert (state["aof_last_bgrewrite_status"], state["rdb_last_bgsave_status"]) == \
            ("ok", "ok")
    finally:
        c.call("CONFIG", "SET", "snapshot-zstd-level", "1")
        c.call("FLUSHALL")


# -- INFO persistence -------------------------------------------------------------------

def _names(fields):
    return [name for name, _ in fields if not name.startswith("fastcache_shard")]


def test_info_fields_in_redis_order(server, redis_ref, make_server):
    assert _names(info(server.port)) == _names(info(redis_ref.port))
    shard_lines = [name for name, _ in info(server.port) if name.startswith("fastcache_")]
    assert shard_lines == ["fastcache_shard0", "fastcache_shard1"]
    # appendonly adds Redis's AOF fields
    theirs = servers.start_redis("--appendonly", "yes")
    ours = make_server("--appendonly", "yes", "--save", "").start()
    try:
        assert _names(info(ours.port)) == _names(info(theirs.port))
        assert field(ours.port, "aof_enabled") == "1"
    finally:
        theirs.stop()


def test_changes_since_last_save_and_lastsave(server):
    c = server.client()
    before = c.lastsave()
    for i in range(20):
        c.set("change:%d" % i, i)
    assert int(field(server.port, "rdb_changes_since_last_save")) >= 20
    while time.time() < before.timestamp() + 1.05:   # LASTSAVE counts whole seconds
        time.sleep(0.05)
    assert c.save()
    state = dict(info(server.port))
    assert state["rdb_changes_since_last_save"] == "0"
    assert c.lastsave() > before
    assert int(state["rdb_last_save_time"]) == int(c.lastsave().timestamp())
    assert int(state["rdb_saves"]) >= 1


# -- saves reach the disk -----------------------------------------------------------------

def test_bgsave_then_restart_loads_the_data(make_server):
    s = make_server(*NO_SAVE).start()
    keys = one_key_per_shard(s, "bg")
    c = s.client()
    for key in keys:
        c.set(key, key)
    c.rpush("list", "a", "b")
    assert c.bgsave()
    state = settle(s.port)
    assert state["rdb_last_bgsave_status"] == "ok"
    assert state["rdb_changes_since_last_save"] == "0"
    s.restart()
    c = s.client()
    assert [c.get(key) for key in keys] == [key.encode() for key in keys]
    assert c.lrange("list", 0, -1) == [b"a", b"b"]
    assert int(field(s.port, "rdb_last_load_keys_loaded")) == len(keys) + 1


def survivors(s, prefix, *words):
    """Set a key on every shard, SHUTDOWN [words], start again: how many came back."""
    keys = one_key_per_shard(s, prefix)
    s.client().mset({key: 1 for key in keys})
    shutdown(s, *words)
    s.start()
    return s.client().exists(*keys)


def test_shutdown_save_and_nosave_without_save_rules(make_server):
    s = make_server(*NO_SAVE).start()
    assert survivors(s, "saved", "SAVE") == 2      # a snapshot although no rules exist
    assert survivors(s, "lost", "NOSAVE") == 0
    assert s.client().exists(*one_key_per_shard(s, "saved")) == 2


def test_shutdown_nosave_skips_the_save_rules_on_every_shard(make_server):
    s = make_server("--appendonly", "no", "--save", "3600 1").start()
    assert survivors(s, "lost", "NOSAVE") == 0
    assert survivors(s, "kept") == 2               # the rules ask for a final snapshot


def test_shutdown_is_refused_when_the_save_fails(make_server):
    s = make_server(*NO_SAVE).start()
    s.client().set("k", "v")
    broken = s.shard_dir(1)
    shutil.rmtree(broken, ignore_errors=True)
    with open(broken, "w"):              # a file where the shard's directory should be
        pass
    c = RawClient(s.port)
    assert c.call("SAVE") == b"-ERR\r\n"
    assert c.call("SHUTDOWN", "SAVE") == SHUTDOWN_FAILED
    assert c.call("PING") == b"+PONG\r\n"    # still serving
    os.remove(broken)
    shutdown(s, "SAVE", "FORCE")


# -- CONFIG SET at run time ---------------------------------------------------------------

def test_config_set_appendonly_then_kill9_keeps_later_writes(make_server):
    s = make_server(*NO_SAVE).start()
    c = s.client()
    before = one_key_per_shard(s, "before")
    for key in before:
        c.set(key, "old")
    assert c.config_set("appendonly", "yes")
    assert field(s.port, "aof_enabled") == "1"
    state = settle(s.port)               # the rewrite that covers the data so far
    assert int(state["aof_rewrites"]) >= 1
    after = one_key_per_shard(s, "after")
    for key in after:
        c.incr(key)
        c.incr(key)
    assert c.config_set("appendfsync", "always")
    for key in after:
        c.incr(key)
    assert c.config_get("append*") == {"appendonly": "yes", "appendfsync": "always"}
    s.restart()                          # kill -9; start with appendonly no: the WAL still loads
    c = s.client()
    assert [c.get(k) for k in before] == [b"old"] * len(before)
    assert [c.get(k) for k in after] == [b"3"] * len(after)
    # ... and appendonly no stops the WAL: later writes live in memory only
    assert c.config_set("appendonly", "yes") and settle(s.port)
    assert c.config_set("appendonly", "no")
    assert field(s.port, "aof_enabled") == "0"
    for key in after:
        c.incr(key)
    s.restart()
    c = s.client()
    assert [c.get(k) for k in after] == [b"3"] * len(after)


def test_wal_fsync_thread_follows_the_policy(tmp_path):
    wal = Wal(str(tmp_path), 0, "everysec")
    wal.open(1)
    try:
        assert wal._syncer.is_alive()
        wal.set_policy("no")
        assert wal._syncer is None
        wal.write(b"x", 1)
        wal.set_policy("always")
        assert not wal._dirty              # switching to always syncs what was written
        wal.set_policy("everysec")
        assert wal._syncer.is_alive()
    finally:
        wal.close()
