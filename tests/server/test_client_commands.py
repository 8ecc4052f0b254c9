"""CLIENT: the caller's own settings, and listing/killing connections on every worker."""
import time

import pytest

from tests.server.conftest import client, raw
from tests.support.differential import compare
from tests.support.workers import one_client_per_worker


def fields(line):
    return [item.split("=", 1)[0] for item in line.split(" ")]


def values(line):
    return dict(item.split("=", 1) for item in line.split(" "))


def test_errors_and_names_match_redis(pair):
    compare(pair, [
        ("CLIENT",), ("CLIENT", "nosuch"), ("CLIENT", "ID", "extra"), ("CLIENT", "HELP"),
        ("CLIENT", "GETNAME"), ("CLIENT", "SETNAME", "has space"), ("CLIENT", "SETNAME", "a\nb"),
        ("CLIENT", "SETNAME", "caf\xe9"), ("CLIENT", "SETNAME", "ok-name"), ("CLIENT", "GETNAME"),
        ("CLIENT", "SETNAME", ""), ("CLIENT", "GETNAME"),
        ("HELLO", "2", "SETNAME", "bad name"), ("CLIENT", "GETNAME"),
        ("CLIENT", "LIST", "TYPE", "normal", "ID", "1"), ("CLIENT", "LIST", "ID"),
        ("CLIENT", "LIST", "TYPE"), ("CLIENT", "LIST", "TYPE", "nosuch"),
        ("CLIENT", "LIST", "TYPE", "pubsub"), ("CLIENT", "LIST", "TYPE", "master"),
        ("CLIENT", "LIST", "TYPE", "replica"), ("CLIENT", "LIST", "TYPE", "slave"),
        ("CLIENT", "LIST", "ID", "1", "abc"), ("CLIENT", "LIST", "ID", "0"),
        ("CLIENT", "LIST", "nosuch"),
        ("CLIENT", "KILL", "1.2.3.4:5"), ("CLIENT", "KILL", "ID", "999999"),
        ("CLIENT", "KILL", "ID", "abc"), ("CLIENT", "KILL", "ID", "0"),
        ("CLIENT", "KILL", "ID", "-5"), ("CLIENT", "KILL", "nosuch", "x"),
        ("CLIENT", "KILL", "TYPE", "nosuch"), ("CLIENT", "KILL", "SKIPME", "maybe"),
        ("CLIENT", "KILL", "ADDR", "1.1.1.1:1", "LADDR", "2.2.2.2:2"),
        ("CLIENT", "KILL", "USER", "nobody"), ("CLIENT", "KILL", "ID", "1", "TYPE"),
        ("CLIENT", "KILL", "MAXAGE", "10"), ("CLIENT", "KILL", "TYPE", "master"),
        ("CLIENT", "NO-EVICT", "on"), ("CLIENT", "NO-EVICT", "maybe"),
    ])


def test_list_and_info_lines_have_redis_fields(fc, redis_ref, protocol):
    ours, theirs = raw(fc.port, protocol), raw(redis_ref.port, protocol)
    for args in (("CLIENT", "INFO"), ("CLIENT", "LIST", "ID", "1")):
        mine, real = ours.call(*args), theirs.call(*args)
        assert mine[:1] == real[:1]  # a bulk string, or a verbatim one in RESP3
    reply = client(fc.port, protocol)
    line = reply.execute_command("CLIENT", "INFO")
    real = client(redis_ref.port, protocol).execute_command("CLIENT", "INFO")
    line = line if isinstance(line, str) else line.decode()
    real = real if isinstance(real, str) else real.decode()
    assert fields(line.strip()) == fields(real.strip())
    mine = values(line.strip())
    assert mine["cmd"] == "client|info" and mine["resp"] == str(protocol)
    assert mine["user"] == "default" and mine["flags"] == "N"


def test_list_spans_workers(fc):
    clients = one_client_per_worker(lambda: client(fc.port), fc.shards)
    assert len(clients) == fc.shards
    ids = sorted(c.client_id() for c in clients.values())
    me = clients[0]
    me.client_setname("lister")
    listed = me.client_list()
    assert set(ids) <= {int(entry["id"]) for entry in listed}
    mine = next(entry for entry in listed if entry["name"] == "lister")
    assert mine["cmd"] == "client|list" and int(mine["id"]) == me.client_id()
    # ID keeps the order asked for (and repeats), whichever worker holds the client.
    wanted = ids[::-1] + ids[:1] + [10 ** 9]
    by_id = me.execute_command("CLIENT", "LIST", "ID", *wanted)
    got = [int(values(line)["id"]) for line in by_id.strip().split("\n")]
    assert got == wanted[:-1]
    assert [c["id"] for c in me.client_list(_type="normal")] == [c["id"] for c in listed]
    for c in clients.values():
        c.close()


def test_kill_reaches_every_worker(fc):
    clients = one_client_per_worker(lambda: client(fc.port), fc.shards)
    killer = clients[0]
    for index, victim in clients.items():
        if index == 0:
            continue
        victim_id = victim.client_id()
        assert killer.client_kill_filter(_id=victim_id) == 1
        assert str(victim_id) not in {c["id"] for c in killer.client_list()}
        assert victim.client_id() != victim_id  # redis-py had to reconnect
    # Old form: by address, OK or an error.
    target = raw(fc.port)
    addr = values(target.call("CLIENT", "INFO")[1:].split(b"\r\n", 1)[1].decode().strip())["addr"]
    assert killer.client_kill(addr) is True
    with pytest.raises(ConnectionError):
        target.call("PING")
    with pytest.raises(Exception, match="No such client"):
        killer.client_kill(addr)
    killer.close()


def test_kill_by_laddr_and_skipme(fc):
    c = raw(fc.port)
    laddr = "127.0.0.1:%d" % fc.port
    others = [raw(fc.port) for _ in range(3)]
    for o in others:
        o.call("PING")
    killed = int(c.call("CLIENT", "KILL", "LADDR", laddr)[1:-2])
    assert killed >= 3
    assert c.call("PING") == b"+PONG\r\n"  # SKIPME yes by default
    reply = c.call("CLIENT", "KILL", "ID", c.call("CLIENT", "ID")[1:-2], "SKIPME", "no")
    assert reply == b":1\r\n"  # the reply arrives, then the connection closes
    with pytest.raises((ConnectionError, OSError)):
        c.call("PING")


def test_setinfo(fc):
    c = raw(fc.port)
    assert c.call("CLIENT", "SETINFO", "LIB-NAME", "redis-py") == b"+OK\r\n"
    assert c.call("CLIENT", "SETINFO", "lib-ver", "8.0.0") == b"+OK\r\n"
    assert c.call("CLIENT", "SETINFO", "lib-name", "") == b"+OK\r\n"
    assert c.call("CLIENT", "SETINFO", "lib-name", "a b") == (
        b"-ERR lib-name cannot contain spaces, newlines or special characters.\r\n")
    assert c.call("CLIENT", "SETINFO", "color", "x") == b"-ERR Unrecognized option 'color'\r\n"
    assert c.call("CLIENT", "SETINFO", "lib-name") == (
        b"-ERR wrong number of arguments for 'client|setinfo' command\r\n")


def test_hello_setname(fc):
    c = raw(fc.port)
    assert c.call("HELLO", "3", "SETNAME", "bad name") == (
        b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n")
    assert c.call("HELLO", "3", "SETNAME", "good").startswith(b"%7\r\n")
    assert c.call("CLIENT", "GETNAME") == b"$4\r\ngood\r\n"


def test_redis_py_handshake(fc, protocol):
    """redis-py sends HELLO (RESP3) and CLIENT SETINFO on connect; all must just work."""
    r = client(fc.port, protocol)
    assert r.ping() is True
    info = r.client_info()
    assert int(info["id"]) == r.client_id() and info["resp"] == str(protocol)
    assert r.client_getname() is None
    r.close()


def test_idle_and_age_advance(fc):
    r = client(fc.port)
    other = raw(fc.port)
    other_id = int(other.call("CLIENT", "ID")[1:-2])
    time.sleep(1.1)
    line = r.execute_command("CLIENT", "LIST", "ID", other_id)
    entry = values(line.strip())
    assert int(entry["idle"]) >= 1 and int(entry["age"]) >= 1
    assert entry["cmd"] in ("client|id", "client")  # subcommands of past commands: approximate
    other.close()
