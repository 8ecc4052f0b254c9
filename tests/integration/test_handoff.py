"""A client whose commands keep going to one other shard moves to that shard's
worker (fastcache/server/handoff.py), invisibly: same socket, CLIENT ID, name,
db, protocol and AUTH state, and every reply in order. INFO stats
fastcache_client_handoffs counts the moves; CLIENT ID % shards names the worker a
connection first reached (tests/support/workers.py)."""
import random
import subprocess
import threading
import time

import pytest
import redis

from tests.support.procs import start_fastcache_argv
from tests.support.resp import RawClient, ReplyScanner, encode_command
from tests.support.shardkeys import keys_by_shard

PASSWORD = "handoff-pw"
HAMMER = 300     # commands at one key: well past the first verdict (64) and the second (128)


def _start(shards, *extra):
    server = start_fastcache_argv("--shards", str(shards), "--save", "", "--requirepass",
                                  PASSWORD, *extra, password=PASSWORD)
    server.shards = shards
    return server


@pytest.fixture(scope="module", params=[2, 4], ids=["shards2", "shards4"])
def server(request):
    proc = _start(request.param)
    yield proc
    proc.stop()


@pytest.fixture
def admin(server):
    client = redis.Redis(port=server.port, password=PASSWORD, decode_responses=True,
                         single_connection_client=True, socket_timeout=10)
    client.flushall()
    yield client
    client.close()


def connect(server, protocol=2, **kw):
    return redis.Redis(port=server.port, password=PASSWORD, protocol=protocol,
                       decode_responses=True, single_connection_client=True, socket_timeout=10,
                       **kw)


def wait_for(condition, seconds=5):
    """Closed connections leave their worker's list a moment after the client is done."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.05)


def handoffs(admin):
    return admin.info("stats")["fastcache_client_handoffs"]


def away_key(server, client_id, prefix="ho", step=1):
    """A key owned by a shard other than the worker the connection reached."""
    home = client_id % server.shards
    return keys_by_shard(server.shards, 1, prefix)[(home + step) % server.shards][0]


def home_key(server, client_id, prefix="ho"):
    return keys_by_shard(server.shards, 1, prefix)[client_id % server.shards][0]


def raw_auth(server):
    raw = RawClient(server.port)
    assert raw.call("AUTH", PASSWORD) == b"+OK\r\n"
    return raw


def read_replies(raw, count):
    """count replies off a RawClient, as raw bytes."""
    replies = []
    while len(replies) < count:
        end = ReplyScanner.end(raw.buf) if raw.buf else -1
        if end >= 0:
            replies.append(raw.buf[:end])
            raw.buf = raw.buf[end:]
            continue
        chunk = raw.sock.recv(1 << 16)
        assert chunk, "connection closed after %d of %d replies" % (len(replies), count)
        raw.buf += chunk
    return replies


@pytest.mark.parametrize("protocol", [2, 3], ids=["resp2", "resp3"])
def test_moves_and_keeps_its_state(server, admin, protocol):
    before = handoffs(admin)
    connections = admin.info("stats")["total_connections_received"]
    c = connect(server, protocol, client_name="mover")
    c.execute_command("CLIENT", "SETINFO", "LIB-NAME", "holib")
    cid = c.client_id()
    key = away_key(server, cid)
    c.select(5)
    for i in range(HAMMER):
        assert c.rpush(key, i) == i + 1
    assert handoffs(admin) == before + 1
    info = c.client_info()
    assert int(info["id"]) == c.client_id() == cid
    assert info["name"] == "mover" and c.client_getname() == "mover"
    assert int(info["db"]) == 5 and int(info["resp"]) == protocol
    assert c.llen(key) == HAMMER and c.lrange(key, 0, 2) == ["0", "1", "2"]
    c.hset("h:" + key, mapping={"f": "v"})
    reply = c.execute_command("HGETALL", "h:" + key)
    assert reply == {"f": "v"} if protocol == 3 else reply in ({"f": "v"}, ["f", "v"])
    # Still authenticated: a password-protected server answers without NOAUTH.
    assert c.ping() is True
    # Counted as a move, not as a new connection; listed once, on its new worker.
    stats = admin.info("stats")
    assert stats["total_connections_received"] == connections + 1
    listed = [entry for entry in admin.client_list() if int(entry["id"]) == cid]
    assert len(listed) == 1 and listed[0]["name"] == "mover" and int(listed[0]["db"]) == 5
    wait_for(lambda: admin.info("clients")["connected_clients"] == 2)
    # Settled: more of the same traffic does not move it again.
    for i in range(HAMMER):
        c.rpush(key, i)
    assert handoffs(admin) == before + 1
    c.close()


def test_follows_its_traffic_without_ping_pong(server, admin):
    before = handoffs(admin)
    c = connect(server)
    cid = c.client_id()
    first, second = away_key(server, cid, "pp"), away_key(server, cid, "pp", step=0)
    for i in range(HAMMER):
        c.incr(first)
    assert handoffs(admin) == before + 1
    # Back home: the second move needs a window twice as long.
    for i in range(100):
        c.incr(second)
    assert handoffs(admin) == before + 1
    for i in range(HAMMER):
        c.incr(second)
    assert handoffs(admin) == before + 2
    # Alternating between the two shards: neither reaches the share.
    for i in range(2000):
        c.incr(first if i % 2 else second)
    assert handoffs(admin) == before + 2
    assert int(c.get(first)) == HAMMER + 1000 and int(c.get(second)) == 100 + HAMMER + 1000
    c.close()


def test_random_keys_never_move(server, admin):
    before = handoffs(admin)
    c = connect(server)
    rng = random.Random(7)
    pipe = c.pipeline(transaction=False)
    for i in range(3000):
        c.set("key:%d" % rng.randrange(100000), i)
        if i % 100 == 0:
            for _ in range(50):
                pipe.get("key:%d" % rng.randrange(100000))
            pipe.execute()
    assert handoffs(admin) == before
    c.close()


def _pipeline_bytes(commands):
    return b"".join(encode_command(argv) for argv in commands)


@pytest.mark.parametrize("chunked", [False, True], ids=["one-write", "split-writes"])
def test_deep_pipeline_across_the_move(server, admin, chunked):
    """Replies stay in order while the connection moves between two writes of
    a pipeline, or in the middle of a pipeline that arrives in pieces (some
    of them ending inside a command)."""
    rng = random.Random(11)
    before = handoffs(admin)
    raw = raw_auth(server)
    cid = int(raw.call("CLIENT", "ID")[1:-2])
    target, home = away_key(server, cid, "dp"), home_key(server, cid, "dp")
    expected_target = expected_home = 0
    # Request-reply traffic first (only a client that mostly waits for its replies
    # moves): the verdict (64 commands) lands inside the pipeline, whose small
    # pieces (chunked) leave idle moments to move in.
    for _ in range(60):
        expected_target += 1
        assert raw.call("INCR", target) == b":%d\r\n" % expected_target
    commands, expected = [], []
    for i in range(20000):
        if i % 50 == 7:
            expected_home += 1
            commands.append(["INCR", home])
            expected.append(b":%d\r\n" % expected_home)
        elif i % 50 == 8:
            commands.append(["ECHO", "e%d" % i])
            expected.append(b"$%d\r\ne%d\r\n" % (len("e%d" % i), i))
        else:
            expected_target += 1
            commands.append(["INCR", target])
            expected.append(b":%d\r\n" % expected_target)
    got = []
    if chunked:
        # Pieces of any size, often ending inside a command, with short pauses: the
        # connection is idle now and then, with or without half a command buffered.
        reader = threading.Thread(target=lambda: got.extend(read_replies(raw, len(commands))))
        reader.start()
        data = _pipeline_bytes(commands)
        pos = 0
        while pos < len(data):
            step = rng.choice([1, 7, 33, 500, 4096, 20000])
            raw.send(data[pos:pos + step])
            pos += step
            if rng.random() < 0.3:
                time.sleep(0.001)
        reader.join(60)
    else:
        # Whole-command writes, each after the replies to the one before: the
        # connection moves between two of them.
        for start in range(0, len(commands), 997):
            raw.send(_pipeline_bytes(commands[start:start + 997]))
            got += read_replies(raw, min(997, len(commands) - start))
    assert len(got) == len(expected)
    assert got == expected
    # A deep pipeline is not moved (its passes keep both workers busy), nor a stream
    # with no pause at a command's end: the request-reply traffic after it is.
    for _ in range(2 * 64):
        expected_target += 1
        assert raw.call("INCR", target) == b":%d\r\n" % expected_target
    assert handoffs(admin) >= before + 1
    assert raw.call("GET", target) == b"$%d\r\n%d\r\n" % (len(str(expected_target)),
                                                          expected_target)
    raw.close()


def test_transaction_and_watch_are_not_moved_mid_state(server, admin):
    before = handoffs(admin)
    c = connect(server)
    cid = c.client_id()
    key, watched = away_key(server, cid, "tx"), home_key(server, cid, "tx")
    # MULTI: queued commands are not forwarded one by one, and EXEC sees them all.
    c.execute_command("MULTI")
    for i in range(HAMMER):
        assert c.execute_command("RPUSH", key, i) in (b"QUEUED", "QUEUED")
    assert c.execute_command("EXEC") == list(range(1, HAMMER + 1))
    # WATCH: hammering another shard leaves the connection where its WATCH is.
    moved_before_watch = handoffs(admin)
    c.execute_command("WATCH", watched)
    for i in range(HAMMER):
        c.rpush(key, i)
    assert handoffs(admin) == moved_before_watch
    c.execute_command("MULTI")
    c.execute_command("SET", watched, "done")
    assert c.execute_command("EXEC") == ["OK"]
    # A WATCHed key touched by someone else still aborts the EXEC.
    c.execute_command("WATCH", watched)
    for i in range(HAMMER):
        c.rpush(key, i)
    admin.set(watched, "changed")
    c.execute_command("MULTI")
    c.execute_command("SET", watched, "mine")
    assert c.execute_command("EXEC") is None
    assert admin.get(watched) == "changed"
    # Out of WATCH: the traffic moves it now.
    for i in range(HAMMER):
        c.rpush(key, i)
    assert handoffs(admin) >= moved_before_watch + 1
    assert handoffs(admin) >= before + 1
    c.close()


def test_subscriber_is_not_moved(server, admin):
    """In RESP3 a subscriber may run any command; it stays with its subscriptions."""
    before = handoffs(admin)
    raw = RawClient(server.port)
    assert raw.call("HELLO", "3", "AUTH", "default", PASSWORD).startswith(b"%")
    cid = int(raw.call("CLIENT", "ID")[1:-2])
    key = away_key(server, cid, "sub")
    assert raw.call("SUBSCRIBE", "news") == b">3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n"
    for i in range(HAMMER):
        assert raw.call("RPUSH", key, i) == b":%d\r\n" % (i + 1)
    time.sleep(0.2)
    assert handoffs(admin) == before
    assert admin.publish("news", "hello") == 1
    assert read_replies(raw, 1) == [b">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n"]
    raw.close()


def test_blocked_client_is_not_moved(server, admin):
    before = handoffs(admin)
    raw = raw_auth(server)
    cid = int(raw.call("CLIENT", "ID")[1:-2])
    key, queue = away_key(server, cid, "bl"), home_key(server, cid, "blq")
    # The verdict comes at the end of this pass, but the BLPOP reply is owed.
    raw.send(_pipeline_bytes([["RPUSH", key, i] for i in range(HAMMER)] + [["BLPOP", queue, 0]]))
    assert read_replies(raw, HAMMER) == [b":%d\r\n" % (i + 1) for i in range(HAMMER)]
    time.sleep(0.3)
    assert handoffs(admin) == before
    blocked = [e for e in admin.client_list() if int(e["id"]) == cid]
    assert blocked and "b" in blocked[0]["flags"]
    admin.rpush(queue, "item")
    assert read_replies(raw, 1) == [b"*2\r\n$%d\r\n%s\r\n$4\r\nitem\r\n" % (len(queue),
                                                                          queue.encode())]
    raw.close()


def _moved_client(server, admin, prefix):
    before = handoffs(admin)
    c = connect(server)
    cid = c.client_id()
    key = away_key(server, cid, prefix)
    for i in range(HAMMER):
        c.incr(key)
    assert handoffs(admin) == before + 1
    return c, cid


def test_client_kill_id_reaches_a_moved_client(server, admin):
    c, cid = _moved_client(server, admin, "kill")
    assert admin.client_kill_filter(_id=cid) == 1
    with pytest.raises(redis.ConnectionError):
        c.connection.send_command("PING")
        c.connection.read_response()
    assert not [e for e in admin.client_list() if int(e["id"]) == cid]
    c.close()


def test_switch_off(server, admin):
    admin.config_set("client-handoff", "no")
    try:
        before = handoffs(admin)
        c = connect(server)
        key = away_key(server, c.client_id(), "off")
        for i in range(HAMMER):
            c.incr(key)
        assert handoffs(admin) == before
        c.close()
    finally:
        admin.config_set("client-handoff", "yes")


def test_benchmark_load_loses_nothing(server, admin):
    before = handoffs(admin)
    n = 50000
    # -P 4: pipelined, yet shallow enough for the clients to move (handoff.SHALLOW)
    subprocess.run(["redis-benchmark", "-p", str(server.port), "-a", PASSWORD, "-t",
                    "lpush,incr", "-c", "50", "-P", "4", "-n", str(n), "-q"],
                   check=True, capture_output=True, timeout=120)
    assert admin.llen("mylist") == n
    assert int(admin.get("counter:__rand_int__")) == n
    assert handoffs(admin) > before
    wait_for(lambda: admin.info("clients")["connected_clients"] == 1)


def test_threads_hammering_their_own_keys(server, admin):
    """Many connections at once, each on its own key, pipelined and not: every
    increment lands once, every reply is the one expected."""
    errors = []

    def work(t):
        try:
            c = connect(server, protocol=2 + t % 2)
            key = "thr:%d" % t
            total = 0
            for round_no in range(30):
                if round_no % 3:
                    pipe = c.pipeline(transaction=False)
                    for _ in range(40):
                        pipe.incr(key)
                    got = pipe.execute()
                    assert got == list(range(total + 1, total + 41)), got
                    total += 40
                else:
                    total += 1
                    assert c.incr(key) == total
            c.close()
        except Exception as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    assert all(int(admin.get("thr:%d" % t)) == 20 * 40 + 10 for t in range(24))


def test_timeout_closes_a_moved_client():
    server = _start(2, "--timeout", "1", "--hz", "50")
    try:
        admin = connect(server)
        c, cid = _moved_client(server, admin, "idle")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if not [e for e in admin.client_list() if int(e["id"]) == cid]:
                break
            admin.ping()   # keeps the admin connection itself from going idle
            time.sleep(0.2)
        else:
            pytest.fail("the moved client was never timed out")
        with pytest.raises(redis.ConnectionError):
            c.connection.send_command("PING")
            c.connection.read_response()
    finally:
        server.stop()


def test_single_shard_never_moves():
    server = start_fastcache_argv("--shards", "1", "--save", "")
    try:
        c = redis.Redis(port=server.port, decode_responses=True, single_connection_client=True)
        for i in range(HAMMER):
            c.incr("x")
        assert c.info("stats")["fastcache_client_handoffs"] == 0
        c.close()
    finally:
        server.stop()


# -- the verdict and the idle check, without a server ----------------------------------------

class _Conn:
    """What handoff.py reads of a connection."""

    def __init__(self, parser):
        self.parser = parser

    def read(self, data):
        self.parser.feed(data)
        return self.parser.commands()


@pytest.mark.parametrize("native", [True, False], ids=["native", "python"])
def test_input_complete_sees_a_half_received_command(native):
    from fastcache.protocol import parser as parsers
    from fastcache.server.handoff import input_complete
    cls = parsers.NativeRequestParser if native else parsers.PyRequestParser
    if cls is None:
        pytest.skip("native extension not built")
    conn = _Conn(cls(1 << 20, 1 << 30))
    assert input_complete(conn)
    conn.read(b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n")
    assert input_complete(conn)
    # The parser takes the header and the first argument of the next command:
    # nothing is left unparsed, yet half a command is held.
    conn.read(b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n*2\r\n$4\r\nECHO\r\n")
    assert conn.parser.buffered == 0 and not input_complete(conn)
    assert conn.read(b"$2\r\nho\r\n") == [[b"ECHO", b"ho"]]
    assert input_complete(conn)
    conn.read(b"PIN")                     # an inline command on its way
    assert not input_complete(conn)
    assert conn.read(b"G\r\n") == [[b"PING"]]
    assert input_complete(conn)


def test_verdict_needs_the_share_and_grows_with_moves():
    from fastcache.server.handoff import SHARE, WINDOW, Affinity

    class Worker:
        nshards = 4
        handoff = object()
        config = {"client-handoff": True}

    class Replies:
        def __init__(self, nshards):
            self.fwd = [[] for _ in range(nshards)]
            self.nfwd = 0

    conn = type("Conn", (), {})()
    conn.worker, conn.move_to, conn.routed = Worker, None, 0
    conn.replies = Replies(4)

    def passes(owners):
        for owner in owners:
            conn.routed += 1
            if owner is not None:
                conn.replies.fwd[owner].append([b"GET", b"k"])
                conn.replies.nfwd += 1
            conn.affinity.after_pass(conn)
            conn.replies = Replies(4)

    conn.affinity = Affinity(4)
    short = int(WINDOW * SHARE) - 1
    passes([2] * short + [None] * (WINDOW - short))
    assert conn.move_to is None
    passes([2] * WINDOW)
    assert conn.move_to == 2
    rng = random.Random(3)
    passes([rng.choice([None, 1, 2, 3]) for _ in range(50 * WINDOW)])
    assert conn.move_to is None
    conn.affinity = Affinity(4, moves=1)
    passes([3] * WINDOW)
    assert conn.move_to is None          # half the window a second move needs
    passes([3] * WINDOW)
    assert conn.move_to == 3


def test_deep_pipelines_stay_where_they_are():
    """A client whose passes carry many forwards keeps two workers busy on its
    behalf (one reads and replies, the owner runs the commands): no move."""
    from fastcache.server.handoff import SHALLOW, WINDOW, Affinity

    class Worker:
        nshards = 2
        handoff = object()
        config = {"client-handoff": True}

    conn = type("Conn", (), {})()
    conn.worker, conn.move_to, conn.routed = Worker, None, 0
    conn.affinity = Affinity(2)
    depth = SHALLOW + 1
    for _ in range(WINDOW // depth + 1):
        conn.replies = type("Replies", (), {})()
        conn.replies.fwd = [[], [[b"LPUSH", b"k", b"v"]] * depth]
        conn.replies.nfwd = depth
        conn.routed += depth
        conn.affinity.after_pass(conn)
    assert conn.routed == 0 and conn.move_to is None     # judged, and stays
