"""A disk that refuses writes, simulated with a file-size limit on the workers
(RLIMIT_FSIZE: writes past it fail with EFBIG, "File too large")."""
import os
import resource
import signal
import time

import pytest
import redis

from tests.support.shardkeys import round_robin

MISCONF = "MISCONF Errors writing to the AOF file: File too large"
VALUE = b"v" * 1000


def ignores(pid, signum):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("SigIgn:"):
                return bool(int(line.split()[1], 16) & (1 << (signum - 1)))
    raise AssertionError("no SigIgn line")


def largest_segment(s):
    return max(os.path.getsize(p) for i in range(s.shards) for p in s.segments(i))


def limit_files(s, size):
    """Set the workers' soft limit (raising a hard limit back needs CAP_SYS_RESOURCE)."""
    for pid in s.workers():
        _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (size, hard))


def fill_until_refused(s, client, keys, held=None):
    """SET keys (spread over every shard) until each shard has refused one;
    ({acknowledged key: value}, [refused keys], [error texts]). With a list
    `held`, a reply that never comes (it waits for the disk) is not an
    acknowledgement: the key goes to held and a new client carries on."""
    acked, refused, errors = {}, [], []
    for key in keys:
        try:
            client.set(key, VALUE)
        except redis.ResponseError as exc:
            refused.append(key)
            errors.append(str(exc))
            if len(refused) >= 2 * s.shards:
                break
        except redis.TimeoutError:
            if held is None:
                raise
            held.append(key)
            client = s.client(socket_timeout=2)
        else:
            acked[key] = VALUE
    return acked, refused, errors


def check_after_restart(s, acked, refused):
    c = s.client()
    assert [k for k in acked if c.get(k) != acked[k]] == []
    assert [k for k in refused if c.exists(k)] == []


def test_full_disk_refuses_writes_until_it_has_room_again(make_server):
    s = make_server("--appendonly", "yes", "--appendfsync", "everysec", "--save", "").start()
    c = s.client()
    acked = {}
    for key in round_robin(2, 20, prefix="base"):
        c.set(key, b"base")
        acked[key] = b"base"
    for pid in s.workers():
        assert ignores(pid, signal.SIGXFSZ), "SIGXFSZ would kill the worker"
    limit_files(s, largest_segment(s) + 20000)

    more, refused, errors = fill_until_refused(s, c, round_robin(2, 400, prefix="fill"))
    acked.update(more)
    assert refused and set(errors) == {MISCONF}, errors
    assert len(s.workers()) == 2                  # nobody died of SIGXFSZ

    # reads keep working, for this client and others; writes are refused for all
    assert c.get(next(iter(acked))) is not None
    other = s.client()
    assert other.ping() and other.dbsize() == len(acked)
    assert [other.get(k) for k in list(acked)[:5]] == [acked[k] for k in list(acked)[:5]]
    with pytest.raises(redis.ResponseError, match="^" + MISCONF):
        other.set(refused[0], "again")
    with pytest.raises(redis.ResponseError, match="^" + MISCONF):
        other.incr("counter")

    limit_files(s, resource.RLIM_INFINITY)
    deadline = time.monotonic() + 5
    after = round_robin(2, 20, prefix="after")
    while True:
        try:
            for key in after:
                c.set(key, b"after")
                acked[key] = b"after"
            break
        except redis.ResponseError as exc:
            assert str(exc) == MISCONF
            assert time.monotonic() < deadline, "writes still refused after the disk has room"
            time.sleep(0.05)
    assert "WAL writes to" in s.output() and "work again" in s.output()

    s.restart()
    check_after_restart(s, acked, refused)


def test_always_never_acknowledges_a_write_the_disk_refused(make_server):
    """appendfsync always promises that an acknowledged write is on disk. Redis
    exits when the WAL write fails; fastcache stays up: the replies that depend
    on the refused records wait for the disk, later writes get MISCONF, and
    reads go on."""
    s = make_server("--appendonly", "yes", "--appendfsync", "always", "--save", "").start()
    s.client().set("before", b"kept")
    limit_files(s, largest_segment(s) + 20000)
    held = []
    acked, refused, errors = fill_until_refused(s, s.client(socket_timeout=2),
                                               round_robin(2, 400, prefix="fill"), held)
    assert held and refused and set(errors) == {MISCONF}, (held, errors)
    for _ in range(8):      # reads go on, whichever worker a client lands on
        assert s.client(socket_timeout=2).get("before") == b"kept"
    s.restart()                                   # the limit never lifted
    check_after_restart(s, dict(acked, before=b"kept"), [])
