"""INFO: Redis's sections, fields and order, with values summed over every worker."""
import hiredis
import pytest

from tests.server.conftest import client, raw
from tests.support.differential import compare

REDIS_SECTION_DATA = {"Commandstats", "Errorstats", "Latencystats", "Keyspace"}


def parse(text):
    """INFO text -> [(title, [field names])]."""
    sections = []
    for line in text.split("\r\n"):
        if line.startswith("# "):
            sections.append((line[2:], []))
        elif line:
            sections[-1][1].append(line.split(":", 1)[0])
    return sections


def info_text(port, *sections):
    reader = hiredis.Reader(encoding="utf-8")
    reader.feed(raw(port).call("INFO", *sections))
    return reader.gets()


def test_fields_in_redis_order(fc, redis_ref):
    ours = parse(info_text(fc.port, "everything"))
    theirs = parse(info_text(redis_ref.port, "everything"))
    assert [title for title, _ in ours] == [title for title, _ in theirs]
    for (title, mine), (_, real) in zip(ours, theirs):
        if title == "Server":
            assert mine.pop() == "fastcache_shards"
        if title == "Persistence":  # then one line per shard
            assert mine[-fc.shards:] == ["fastcache_shard%d" % i for i in range(fc.shards)]
            del mine[-fc.shards:]
        if title in ("Replication", "Stats"):  # Redis's fields, then fastcache's own
            mine = [name for name in mine if not name.startswith("fastcache_")]
        if title not in REDIS_SECTION_DATA:
            assert mine == real, title


@pytest.mark.parametrize("args", [
    (), ("default",), ("all",), ("everything",), ("server", "clients"), ("keyspace", "server"),
    ("SERVER",), ("nosuch",), ("cpu", "cpu"), ("default", "commandstats"), ("Modules",),
])
def test_section_choice_matches_redis(fc, redis_ref, args):
    ours = [title for title, _ in parse(info_text(fc.port, *args))]
    assert ours == [title for title, _ in parse(info_text(redis_ref.port, *args))]


def test_reply_types_match_redis(pair):
    compare(pair, [("INFO", "nosuch"), ("INFO", "nosuch", "other"), ("INFO", "cluster")])


def test_resp3_reply_is_verbatim_text(fc):
    reply = raw(fc.port, 3).call("INFO", "server")
    assert reply.startswith(b"=") and b"\r\ntxt:# Server\r\n" in reply


def test_redis_py_reads_it(fc, protocol):
    info = client(fc.port, protocol).info()
    assert info["redis_version"] == "7.0.15"
    assert info["arch_bits"] == 64 and info["cluster_enabled"] == 0
    assert info["tcp_port"] == fc.port
    assert info["fastcache_shards"] == fc.shards
    assert info["role"] == "master" and info["loading"] == 0
    assert info["used_memory"] > 0 and info["used_memory_human"].endswith("M")


def test_keyspace_counts_every_shard(fc):
    r = client(fc.port)
    r.flushall()
    assert r.info("keyspace") == {}
    for i in range(40):
        r.set("key:%d" % i, i, ex=1000 if i % 4 == 0 else None)
    r.select(3)
    r.set("other", 1)
    assert info_text(fc.port, "keyspace") == ("# Keyspace\r\ndb0:keys=40,expires=10,avg_ttl=0\r\n"
                        "db3:keys=1,expires=0,avg_ttl=0\r\n")
    r.flushall()


def test_counters_add_up_over_workers(fc):
    r = client(fc.port)
    r.flushall()
    r.config_resetstat()
    for i in range(30):
        r.set("k%d" % i, 1)
    for i in range(30):
        r.get("k%d" % i)
        r.get("missing%d" % i)
    r.set("short", 1, px=1)
    stats = r.info("stats")
    assert stats["keyspace_hits"] == 30 and stats["keyspace_misses"] == 30
    assert stats["total_commands_processed"] >= 91
    assert stats["total_net_input_bytes"] > 0 and stats["total_net_output_bytes"] > 0
    assert stats["instantaneous_ops_per_sec"] >= 0
    assert r.info("persistence")["rdb_changes_since_last_save"] >= 31
    r.flushall()


def test_connected_clients_counts_every_worker(fc):
    r = client(fc.port)
    before = r.info("clients")["connected_clients"]
    received = r.info("stats")["total_connections_received"]
    others = [raw(fc.port) for _ in range(6)]
    for c in others:
        c.call("PING")
    assert r.info("clients")["connected_clients"] == before + 6
    assert r.info("stats")["total_connections_received"] == received + 6
    for c in others:
        c.close()


def test_resetstat(fc):
    r = client(fc.port)
    r.get("nothing")
    assert r.config_resetstat() is True
    stats = r.info("stats")
    assert stats["keyspace_misses"] == 0 and stats["keyspace_hits"] == 0
    assert stats["total_commands_processed"] <= 2  # the RESETSTAT and this INFO at most
