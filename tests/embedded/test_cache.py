"""fastcache.Cache on its own: construction, the direct paths against the full
path, threads, blocking commands, active expiry and refused commands."""
import threading
import time

import pytest
import redis

from fastcache import Cache
from fastcache.config import ConfigError


# -- construction ---------------------------------------------------------------------

def test_config_keys_as_keyword_arguments():
    with Cache(databases=4, hz=20, slowlog_max_len=5, db=3) as c:
        assert c.config_get("databases") == {"databases": "4"}
        assert c.config_get("hz") == {"hz": "20"}
        assert c.config_get("slowlog-max-len") == {"slowlog-max-len": "5"}
        c.set("k", "v")
        assert c.info("keyspace") == {"db3": {"keys": 1, "expires": 0, "avg_ttl": 0}}
        with pytest.raises(redis.ResponseError, match="DB index is out of range"):
            c.execute_command("SELECT", 4)


@pytest.mark.parametrize("options,key", [
    ({"databases": 0}, "databases"), ({"hz": "fast"}, "hz"), ({"no_such_key": 1}, "no-such-key"),
    ({"shards": 2}, "shards"), ({"notify_keyspace_events": "Q"}, "notify-keyspace-events"),
])
def test_bad_config_values_raise_config_error(options, key):
    with pytest.raises(ConfigError) as info:
        Cache(**options)
    assert info.value.key == key


def test_db_out_of_range():
    with pytest.raises(ValueError, match="databases=2"):
        Cache(databases=2, db=2)


def test_select_switches_the_handle_db():
    with Cache() as c:
        c.set("k", "zero")
        assert c.execute_command("SELECT", 1) is True
        assert c.get("k") is None
        c.set("k", "one")
        c.execute_command("SELECT", 0)
        assert c.get("k") == b"zero"


# -- direct paths -------------------------------------------------------------------

def _stats(c):
    info = c.info()
    return {name: info[name] for name in ("keyspace_hits", "keyspace_misses", "expired_keys",
                                          "rdb_changes_since_last_save",
                                          "total_commands_processed")}


def _state(c):
    db = c._ctx.db
    return dict(db.data), dict(db.expires), set(db.atime)


def _expire_now(c, key):
    c._ctx.db.expires[key.encode()] = 1  # long gone, not yet removed


_COMMANDS = {"get": "GET", "set": "SET", "incrby": "INCRBY", "decrby": "DECRBY",
             "delete": "DEL", "exists": "EXISTS"}


def _run_ops(c, direct):
    """The same operations through the direct paths or through execute_command."""
    results = []

    def op(name, *args, ex=None):
        try:
            if direct:
                results.append(getattr(c, name)(*args, **({"ex": ex} if ex else {})))
            else:
                results.append(c.execute_command(_COMMANDS[name], *args,
                                                 *(("EX", ex) if ex else ())))
        except redis.ResponseError as exc:
            results.append(("error", str(exc)))

    op("get", "a")
    op("set", "a", "1")
    op("get", "a")
    op("set", "t", "x", ex=100)
    op("set", "t", "y", ex=100)
    _expire_now(c, "t")
    op("set", "t", "z", ex=50)
    op("incrby", "a", 5)
    op("decrby", "a", 2)
    op("incrby", "n", -7)
    op("exists", "a", "n", "nope", "a")
    op("set", "gone", "v", ex=10)
    _expire_now(c, "gone")
    op("get", "gone")
    op("set", "gone2", "5", ex=10)
    _expire_now(c, "gone2")
    op("incrby", "gone2", 1)
    op("set", "gone3", "v", ex=10)
    _expire_now(c, "gone3")
    op("exists", "gone3")
    op("set", "gone4", "v", ex=10)
    _expire_now(c, "gone4")
    op("delete", "gone4", "a")
    op("set", "s", "text")
    op("incrby", "s", 1)
    op("incrby", "n", 2 ** 63 - 1)
    op("decrby", "n", 2 ** 63 - 1)
    c.lpush("l", "x")
    op("get", "l")
    op("incrby", "l", 1)
    op("set", "l", "now a string")
    op("get", "l")
    op("set", "t", "no ttl now")
    return results


def test_direct_paths_match_the_full_path():
    with Cache() as direct, Cache() as full:
        ours = _run_ops(direct, True)
        theirs = _run_ops(full, False)
        assert ours == theirs
        assert _state(direct) == _state(full)
        assert _stats(direct) == _stats(full)


def test_direct_paths_decode_and_refuse_like_redis_py():
    with Cache(decode_responses=True) as c:
        assert c.set("k", b"caf\xc3\xa9") is True
        assert c.get("k") == "caf\u00e9"
        assert c["k"] == "caf\u00e9"
        assert "k" in c
        del c["k"]
        assert "k" not in c
        with pytest.raises(KeyError):
            c["k"]
        with pytest.raises(redis.DataError):
            c.set("k", True)
        with pytest.raises(redis.DataError):
            c.get(None)


def test_a_custom_response_callback_turns_the_direct_path_off():
    with Cache() as c:
        c.set("k", "v")
        c.set_response_callback("GET", lambda value, **options: ("custom", value))
        assert c.get("k") == ("custom", b"v")


def test_watched_keys_see_direct_writes():
    with Cache() as c:
        with c.pipeline() as pipe:
            pipe.watch("k")
            c.set("k", 1)
            pipe.multi()
            pipe.get("k")
            with pytest.raises(redis.WatchError):
                pipe.execute()
        with c.pipeline() as pipe:
            pipe.watch("n")
            c.incr("n")
            pipe.multi()
            pipe.get("n")
            with pytest.raises(redis.WatchError):
                pipe.execute()


# -- threads ---------------------------------------------------------------------------

def test_threads_lose_no_updates():
    threads, rounds = 4, 2000
    with Cache() as c:
        def work(n):
            for i in range(rounds):
                c.incr("counter")
                c.incrby("by-two", 2)
                c.rpush("list", "%d:%d" % (n, i))
                c.hincrby("hash", "field", 1)
                if i % 100 == 0:
                    with c.pipeline() as pipe:
                        pipe.incr("txn").incr("txn").execute()

        workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        assert c.get("counter") == b"%d" % (threads * rounds)
        assert c.get("by-two") == b"%d" % (2 * threads * rounds)
        assert c.llen("list") == threads * rounds
        assert c.hget("hash", "field") == b"%d" % (threads * rounds)
        assert c.get("txn") == b"%d" % (threads * (rounds // 100) * 2)
        for n in range(threads):  # each thread's pushes stay in its order
            mine = [v for v in c.lrange("list", 0, -1) if v.startswith(b"%d:" % n)]
            assert mine == [b"%d:%d" % (n, i) for i in range(rounds)]


def test_transaction_helper_retries_on_conflicts():
    with Cache() as c:
        c.set("balance", 0)

        def add(pipe):
            value = int(pipe.get("balance"))
            pipe.multi()
            pipe.set("balance", value + 1)

        workers = [threading.Thread(target=lambda: [c.transaction(add, "balance")
                                                    for _ in range(200)]) for _ in range(3)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        assert c.get("balance") == b"600"


def test_blocking_pop_waits_for_another_thread():
    with Cache() as c:
        got = []
        waiter = threading.Thread(target=lambda: got.append(c.blpop(["jobs"], timeout=10)))
        waiter.start()
        time.sleep(0.1)
        assert waiter.is_alive()
        c.set("unrelated", 1)
        c.rpush("jobs", "job-1")
        waiter.join(5)
        assert got == [(b"jobs", b"job-1")]
        assert c.llen("jobs") == 0


def test_blocking_pop_times_out():
    with Cache() as c:
        start = time.monotonic()
        assert c.brpop(["nothing"], timeout=0.2) is None
        assert time.monotonic() - start >= 0.19
        assert c.bzpopmin(["nothing"], timeout=0.05) is None


# -- background work ---------------------------------------------------------------------

def test_active_expiry_removes_keys_nobody_reads():
    with Cache(hz=50) as c:
        for i in range(50):
            c.set("k%d" % i, "v", px=30)
        c.set("stays", "v")
        deadline = time.monotonic() + 5
        while len(c._ctx.db.data) > 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert list(c._ctx.db.data) == [b"stays"]
        assert c.info("stats")["expired_keys"] == 50


def test_close_stops_the_background_threads_and_keeps_the_data():
    c = Cache()
    c.set("k", "v")
    engine = c._engine
    c.close()
    c.close()
    assert not engine.expirer.is_alive()
    assert c.get("k") == b"v"


def test_dropping_a_cache_stops_its_thread():
    c = Cache()
    expirer = c._engine.expirer
    del c
    import gc
    gc.collect()
    expirer.join(2)
    assert not expirer.is_alive()


# -- what needs a connection -------------------------------------------------------------

@pytest.mark.parametrize("args", [("MULTI",), ("WATCH", "k"), ("EXEC",), ("SUBSCRIBE", "ch"),
                                  ("SHUTDOWN",), ("CLIENT", "INFO")])
def test_connection_commands_are_refused_clearly(args):
    with Cache() as c:
        with pytest.raises(redis.ResponseError, match="needs a client connection"):
            c.execute_command(*args)


def test_pubsub_points_to_serve():
    with Cache() as c:
        with pytest.raises(NotImplementedError, match="serve"):
            c.pubsub()


def test_pipeline_commands_inside_multi_that_need_a_connection_abort_it():
    with Cache() as c:
        with pytest.raises(redis.ResponseError, match="needs a client connection"):
            c.pipeline().set("a", 1).execute_command("SUBSCRIBE", "x").execute()
        assert c.get("a") is None


def test_client_commands_that_make_sense_in_process():
    with Cache() as c:
        assert c.client_setname("me") is True
        assert c.client_getname() == "me"
        assert isinstance(c.client_id(), int)
        assert c.client_list() == []


def test_a_dropped_watching_pipeline_leaves_no_watches():
    import gc
    with Cache() as c:
        pipe = c.pipeline()
        pipe.watch("k")
        assert c._ks.watched
        del pipe
        gc.collect()
        c.set("k", "v")  # the full path, which clears what the pipeline left
        assert not c._ks.watched
        assert c.get("k") == b"v"
