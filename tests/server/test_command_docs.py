"""COMMAND and its subcommands, checked against the reference redis-server.

test_command_info_matches_redis is the table's audit: every command we
register must have Redis's name, arity, flags and key positions, since
cluster-aware clients route by them."""
import re

import hiredis
import pytest

from tests.server.conftest import client, raw
from tests.support.differential import compare
from tests.support.ptycli import PtyRedisCli


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def call(port, *args):
    reader = hiredis.Reader()
    reader.feed(raw(port).call(*args))
    return reader.gets()


def flatten(entries):
    """COMMAND INFO entries (and their subcommands) by name."""
    out = {}
    for entry in entries:
        if entry is not None:
            out[entry[0].decode()] = entry
            out.update(flatten(entry[9]))
    return out


@pytest.fixture(scope="module")
def tables(fc, redis_ref):
    """(ours, redis's) COMMAND INFO entries by name, for the commands we implement."""
    ours = flatten(call(fc.port, "COMMAND"))
    theirs = flatten(call(redis_ref.port, "COMMAND", "INFO", *[n for n in ours if "|" not in n]))
    return ours, theirs


# Commands fastcache has that Redis 7.0 has not (CLIENT SETINFO is Redis 7.2's; FCSYNC is
# fastcache's replication handshake).
NOT_IN_REDIS_7_0 = {"client|setinfo", "fcsync"}


def mismatches(tables, fields):
    ours, theirs = tables
    found = []
    for name, entry in sorted(ours.items()):
        if name in NOT_IN_REDIS_7_0:
            continue
        if name not in theirs:
            found.append("%s: not a Redis command" % name)
            continue
        for label, i in fields:
            mine, real = entry[i], theirs[name][i]
            if label == "tips":
                mine, real = sorted(mine), sorted(real)
            if mine != real:
                found.append("%s %s: fastcache %r, redis %r" % (name, label, mine, real))
    return found


def test_command_info_matches_redis(tables):
    fields = [("arity", 1), ("flags", 2), ("first key", 3), ("last key", 4), ("key step", 5)]
    wrong = mismatches(tables, fields)
    assert not wrong, "\n".join(wrong)


def test_acl_categories_and_tips_match_redis(tables):
    wrong = mismatches(tables, [("acl categories", 6), ("tips", 7)])
    assert not wrong, "\n".join(wrong)


def test_key_specs_locate_the_same_keys(tables):
    """Our single range spec starts where Redis's first spec starts."""
    ours, theirs = tables
    for name, entry in ours.items():
        if name in NOT_IN_REDIS_7_0 or not entry[8]:
            continue
        spec = dict(zip(entry[8][0][::2], entry[8][0][1::2]))
        real = dict(zip(theirs[name][8][0][::2], theirs[name][8][0][1::2]))
        assert spec[b"begin_search"] == real[b"begin_search"], name


def test_docs_match_redis(fc, redis_ref):
    """summary, since and group of every command we implement."""
    ours = call(fc.port, "COMMAND", "DOCS")
    ours = dict(zip(ours[::2], ours[1::2]))
    theirs = call(redis_ref.port, "COMMAND", "DOCS", *ours)
    theirs = dict(zip(theirs[::2], theirs[1::2]))
    wrong = []
    for name, doc in ours.items():
        doc = dict(zip(doc[::2], doc[1::2]))
        if name.decode() in NOT_IN_REDIS_7_0:
            continue
        real = dict(zip(theirs[name][::2], theirs[name][1::2]))
        for field in (b"summary", b"since", b"group"):
            if doc.get(field) != real.get(field):
                wrong.append("%s %s: fastcache %r, redis %r"
                             % (name.decode(), field.decode(), doc.get(field), real.get(field)))
    assert not wrong, "\n".join(wrong)


def test_count_list_and_command_agree(fc):
    everything = call(fc.port, "COMMAND")
    names = call(fc.port, "COMMAND", "LIST")
    assert call(fc.port, "COMMAND", "COUNT") == len(everything)
    assert sorted(n for n in names if b"|" not in n) == sorted(e[0] for e in everything)
    assert {b"config|get", b"client|list", b"command|docs"} <= set(names)


def test_list_filters_agree_with_redis(fc, redis_ref):
    ours = set(call(fc.port, "COMMAND", "LIST")) - {n.encode() for n in NOT_IN_REDIS_7_0}
    for args in (("PATTERN", "c*"), ("PATTERN", "CONFIG|*"), ("PATTERN", "*e?"),
                 ("ACLCAT", "keyspace"), ("ACLCAT", "Dangerous"), ("ACLCAT", "connection"),
                 ("ACLCAT", "string"), ("MODULE", "x")):
        mine = call(fc.port, "COMMAND", "LIST", "FILTERBY", *args)
        real = call(redis_ref.port, "COMMAND", "LIST", "FILTERBY", *args)
        assert set(mine) - {n.encode() for n in NOT_IN_REDIS_7_0} == set(real) & ours, args


def test_replies_match_redis(pair):
    compare(pair, [
        ("COMMAND", "INFO", "get", "client|id", "object|help", "config|get", "nope", "get|x"),
        ("COMMAND", "INFO", "GET", "Object|Help", "|", "a|b|c"),
        ("COMMAND", "DOCS", "nope"),
        ("COMMAND", "GETKEYS", "get", "a"),
        ("COMMAND", "GETKEYS", "mset", "a", "1", "b", "2"),
        ("COMMAND", "GETKEYS", "mset", "a", "1", "b"),
        ("COMMAND", "GETKEYS", "object", "encoding", "k"),
        ("COMMAND", "GETKEYSANDFLAGS", "get", "a"),
        ("COMMAND", "GETKEYS", "ping", "x"),
        ("COMMAND", "GETKEYS", "ping"),
        ("COMMAND", "GETKEYS", "get", "a", "b"),
        ("COMMAND", "GETKEYS", "nosuch", "a"),
        ("COMMAND", "GETKEYS", "object", "nosuch", "k"),
        ("COMMAND", "GETKEYS", "object", "help"),
        ("COMMAND", "GETKEYS", "config", "get", "x"),
        ("COMMAND", "LIST", "FILTERBY"),
        ("COMMAND", "LIST", "FILTERBY", "nosuch", "x"),
        ("COMMAND", "LIST", "extra"),
        ("COMMAND", "LIST", "FILTERBY", "ACLCAT", "nosuch"),
        ("COMMAND", "LIST", "FILTERBY", "PATTERN", "ge?"),
        ("COMMAND", "COUNT", "x"),
        ("COMMAND", "nosuch"),
        ("COMMAND", "HELP"),
    ])


def test_redis_py_reads_the_table(fc, protocol):
    r = client(fc.port, protocol)
    table = r.command()
    assert table["get"]["arity"] == 2
    assert table["mset"]["step_count"] == 2 and table["mset"]["last_key_pos"] == -1
    assert set(table["set"]["flags"]) == {"write", "denyoom"}
    assert r.command_getkeys("MSET", "a", 1, "b", 2) == ["a", "b"]
    assert r.command_list(pattern="config*") == [
        "config", "config|get", "config|set", "config|rewrite", "config|help",
        "config|resetstat"]


def test_redis_cli_help_uses_our_docs(fc):
    """redis-cli 7 reads COMMAND DOCS at start-up for its help; ours has no arguments."""
    session = PtyRedisCli(fc.port)
    try:
        shown = ANSI.sub("", session.run("HELP SET"))
        assert "summary: Set the string value of a key" in shown
        assert session.run("SET k v") == "OK"
        assert session.run("GET k") == '"v"'
        assert "group: server" in ANSI.sub("", session.run("HELP CONFIG GET"))
    finally:
        session.close()
