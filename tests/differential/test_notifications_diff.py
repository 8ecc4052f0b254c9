"""Keyspace notifications: the same __keyspace@<db>__ / __keyevent@<db>__
messages from a real 2-shard fastcache-server as from redis-server.

Each script runs on both servers while a separate connection, PSUBSCRIBEd to
'__key*__:*', collects what is published. Within a script every key shares
one hash tag, so all its keys live on one shard and the whole message
sequence must match; scripts run once with a tag on each shard, so messages
reach the subscriber both from its own worker and over a peer link. Keys
spread over both shards are compared key by key (different shards may
interleave their messages differently).

After a script, the collector switches the flags to KEA and SETs a sentinel
key on every shard; once a sentinel's "set" arrives, everything its shard
published before has arrived too (one shard's messages stay in order)."""
import hiredis
import pytest

from tests.support import servers
from tests.support.resp import RawClient, encode_command
from tests.support.shardkeys import one_per_shard, shard_of

SHARDS = 2
SENTINELS = [key.encode() for key in one_per_shard(SHARDS, prefix="notify-sentinel")]


def _tag_on(shard):
    n = 0
    while shard_of("{t%d}" % n, SHARDS) != shard:
        n += 1
    return "t%d" % n


TAGS = [_tag_on(shard) for shard in range(SHARDS)]


# -- servers and subscribers ----------------------------------------------------------

@pytest.fixture(scope="module")
def fastcache_server():
    server = servers.start_fastcache(shards=SHARDS)
    yield server
    server.stop()


class Side:
    """One server: a command connection and a subscriber connection."""

    def __init__(self, port):
        self.conn = RawClient(port, timeout=5)
        self.sub = RawClient(port, timeout=5)
        self.sub.call("PSUBSCRIBE", "__key*__:*")

    def call(self, *args):
        return self.conn.call(*args)

    def set_flags(self, flags):
        assert self.call("CONFIG", "SET", "notify-keyspace-events", flags) == b"+OK\r\n"

    def collect(self):
        """Every message published so far as (kind, db, key, event), sentinels left out."""
        self.set_flags("KEA")
        for key in SENTINELS:
            self.call("SET", key, "1")
        waiting = set(SENTINELS)
        messages = []
        while waiting:
            message = _parse(self.sub.read_reply())
            if message[2] in SENTINELS:
                if message[0] == "keyevent" and message[3] == b"set":
                    waiting.discard(message[2])
            else:
                messages.append(message)
        return messages

    def close(self):
        self.set_flags("")
        self.conn.close()
        self.sub.close()


def _parse(raw):
    """A pmessage as (kind, db, key, event)."""
    reader = hiredis.Reader()
    reader.feed(raw)
    kind, _, channel, data = reader.gets()
    assert kind == b"pmessage"
    prefix, name = channel.split(b":", 1)
    db = int(prefix.split(b"@")[1].rstrip(b"_"))
    if prefix.startswith(b"__keyspace@"):
        return ("keyspace", db, name, data)
    return ("keyevent", db, data, name)


@pytest.fixture
def sides(redis_ref, fastcache_server):
    pair = [Side(redis_ref.port), Side(fastcache_server.port)]
    for side in pair:
        side.call("FLUSHALL")
        side.collect()  # nothing left over from an earlier test
    yield pair
    for side in pair:
        side.close()


def _argv(line, tag):
    return [arg.replace("{t}", "{%s}" % tag) if arg != "''" else "" for arg in line.split()]


def run(sides, script, flags="KEAn", tag=TAGS[0]):
    """Each side's messages for script (lines of words; {t} is the hash tag, '' an
    empty argument), with notify-keyspace-events set to flags."""
    results = []
    for side in sides:
        side.call("FLUSHALL")
        side.call("SELECT", "0")
        side.set_flags(flags)
        for line in script:
            side.call(*_argv(line, tag))
        results.append(side.collect())
    return results


def assert_same(sides, script, flags="KEAn"):
    for tag in TAGS:
        expected, got = run(sides, script, flags, tag)
        assert got == expected, "tag %s, flags %s:\n%s" % (tag, flags, _diff(expected, got))


def _diff(expected, got, context=4):
    """Redis's and fastcache's messages side by side around the first difference."""
    first = next((i for i, pair in enumerate(zip(expected, got)) if pair[0] != pair[1]),
                 min(len(expected), len(got)))
    lines = []
    for i in range(max(first - context, 0), min(max(len(expected), len(got)), first + context)):
        want = expected[i] if i < len(expected) else None
        have = got[i] if i < len(got) else None
        lines.append("%s %r  %r" % ("  " if want == have else "!!", want, have))
    return "\n".join(lines)


# -- the scripts, one per command family --------------------------------------------

STRINGS = [
    "SET {t}k v", "SET {t}k v2", "SET {t}k v EX 100", "SET {t}k v PX 100000 GET", "SET {t}k v NX",
    "SET {t}k v XX KEEPTTL", "SET {t}n v XX", "SET {t}n v NX GET", "SET {t}k w KEEPTTL",
    "SETNX {t}n v", "SETNX {t}m v", "SETEX {t}k 10 v", "PSETEX {t}k 10000 v", "SETEX {t}k 0 v",
    "GETSET {t}k x", "GETSET {t}g x", "GETDEL {t}k", "GETDEL {t}k",
    "SET {t}e v", "GETEX {t}e", "GETEX {t}e EX 100", "GETEX {t}e PERSIST", "GETEX {t}e PERSIST",
    "GETEX {t}e PX 100000", "GETEX {t}e EXAT 99999999999", "GETEX {t}e PXAT 1", "GETEX {t}e EX 100",
    "MSET {t}a 1 {t}b 2", "MSETNX {t}a 1 {t}c 2", "MSETNX {t}c 1 {t}d 2",
    "INCR {t}a", "INCRBY {t}a 0", "DECR {t}a", "DECRBY {t}a 2", "INCRBYFLOAT {t}a 1.5",
    "INCR {t}i", "INCRBYFLOAT {t}f 1", "INCRBY {t}a x", "INCR {t}e",
    "SET {t}big 9223372036854775807", "INCR {t}big", "INCRBYFLOAT {t}e 1",
    "APPEND {t}a x", "APPEND {t}p ''", "APPEND {t}a ''", "APPEND {t}q xy",
    "SETRANGE {t}a 0 z", "SETRANGE {t}a 0 ''", "SETRANGE {t}r 0 ''", "SETRANGE {t}r 2 x",
    "SETRANGE {t}r 1 x", "SETRANGE {t}r -1 x",
    "SET {t}x v EXAT 1", "GET {t}x", "SET {t}y v PXAT 1", "SET {t}y w", "GET {t}y",
    "HSET {t}h f v", "SET {t}h v GET", "APPEND {t}h x", "INCR {t}h", "GETDEL {t}h", "SET {t}h v",
    "GET {t}a", "STRLEN {t}a", "GETRANGE {t}a 0 -1", "MGET {t}a {t}b", "LCS {t}a {t}b",
]

KEYS = [
    "MSET {t}a 1 {t}b 2 {t}c 3", "DEL {t}a {t}b {t}zz", "DEL {t}c", "UNLINK {t}c", "SET {t}a 1",
    "UNLINK {t}a {t}a", "EXISTS {t}a", "TOUCH {t}a", "TYPE {t}a",
    "SET {t}a 1", "EXPIRE {t}a 100", "EXPIRE {t}a 100 NX", "EXPIRE {t}a 200 GT",
    "EXPIRE {t}a 50 GT", "EXPIRE {t}a 50 LT", "EXPIRE {t}a 60 XX", "PEXPIRE {t}a 100000",
    "EXPIREAT {t}a 99999999999", "PEXPIREAT {t}a 99999999999999", "PERSIST {t}a", "PERSIST {t}a",
    "EXPIRE {t}a 100 XX", "EXPIRE {t}a -1", "EXPIRE {t}a 10", "PEXPIREAT {t}zz 1", "SET {t}a 1",
    "PEXPIREAT {t}a 1", "SET {t}a 1", "EXPIREAT {t}a 1 NX", "EXPIRE {t}a x",
    "MSET {t}a 1 {t}b 2", "RENAME {t}a {t}b", "RENAME {t}b {t}b", "RENAME {t}b {t}c",
    "RENAMENX {t}c {t}b", "SET {t}d 1", "RENAMENX {t}b {t}d", "EXPIRE {t}d 100", "RENAME {t}d {t}e",
    "RENAME {t}nx {t}e", "RENAMENX {t}e {t}e",
    "COPY {t}e {t}f", "COPY {t}e {t}f", "COPY {t}e {t}f REPLACE", "COPY {t}e {t}f DB 1",
    "COPY {t}e {t}f DB 1", "COPY {t}nx {t}g", "COPY {t}e {t}e",
    "MOVE {t}f 2", "MOVE {t}f 2", "SET {t}f 1", "MOVE {t}f 2", "MOVE {t}nx 2", "MOVE {t}e 1",
    "SET {t}x v PXAT 1", "EXISTS {t}x", "SET {t}y v PXAT 1", "RENAME {t}f {t}y",
    "SET {t}z v PXAT 1", "COPY {t}b {t}z",
    "SWAPDB 0 1", "SELECT 1", "DEL {t}f", "SET {t}g 1", "SWAPDB 0 1", "SELECT 0", "DEL {t}g",
    "MULTI", "SET {t}m 1", "INCR {t}m", "DEL {t}m", "EXEC",
    "FLUSHDB", "SET {t}a 1", "FLUSHALL", "SET {t}a 1", "FLUSHALL ASYNC",
]

HASHES = [
    "HSET {t}h a 1", "HSET {t}h a 1", "HSET {t}h b 2 c 3", "HMSET {t}h a 2", "HSET {t}h a",
    "HSETNX {t}h a 1", "HSETNX {t}h z 1", "HSETNX {t}h2 z 1", "HINCRBY {t}h n 1",
    "HINCRBY {t}h n 0", "HINCRBY {t}hh n 1", "HINCRBYFLOAT {t}h f 1.5", "HINCRBYFLOAT {t}hf f 1.5",
    "HINCRBY {t}h a x", "HINCRBY {t}h b x", "HINCRBYFLOAT {t}h a x",
    "HDEL {t}h zz", "HDEL {t}h a b zz", "HDEL {t}h c n f z", "HDEL {t}h2 z", "HDEL {t}h2 z",
    "SET {t}s v", "HSET {t}s a 1", "HDEL {t}s a",
    "HSET {t}x a 1", "PEXPIREAT {t}x 1", "HSET {t}y a 1", "PEXPIRE {t}y 1000000", "HGETALL {t}y",
    "HGET {t}y a", "HLEN {t}y", "HKEYS {t}y", "HSCAN {t}y 0", "HRANDFIELD {t}y",
]

LISTS = [
    "LPUSH {t}l a b", "RPUSH {t}l c", "LPUSHX {t}l d", "RPUSHX {t}l e", "LPUSHX {t}nx d",
    "RPUSHX {t}nx d", "LPOP {t}l", "RPOP {t}l", "LPOP {t}l 0", "LPOP {t}l 2", "RPOP {t}l 5",
    "LPOP {t}l", "RPOP {t}l 2",
    "RPUSH {t}l a b c a", "LSET {t}l 0 x", "LSET {t}l 9 x", "LSET {t}nx 0 x",
    "LINSERT {t}l BEFORE b y", "LINSERT {t}l AFTER zz y", "LINSERT {t}nx AFTER a b",
    "LREM {t}l 0 zz", "LREM {t}l 1 a", "LREM {t}l -1 y", "LTRIM {t}l 0 -1", "LTRIM {t}l 1 -1",
    "LTRIM {t}l 5 10", "LTRIM {t}l 5 10",
    "RPUSH {t}r a a", "LREM {t}r 0 a",
    "RPUSH {t}s a b c", "LMOVE {t}s {t}d LEFT RIGHT", "LMOVE {t}s {t}d RIGHT LEFT",
    "RPOPLPUSH {t}s {t}d", "RPOPLPUSH {t}s {t}d", "RPUSH {t}s a b", "LMOVE {t}s {t}s LEFT RIGHT",
    "LMOVE {t}s {t}s RIGHT LEFT", "LMOVE {t}nx {t}s RIGHT LEFT", "RPUSH {t}x 1",
    "LMOVE {t}x {t}x LEFT LEFT", "SET {t}str v", "LMOVE {t}s {t}str LEFT LEFT",
    "LMPOP 2 {t}nx {t}d LEFT COUNT 2", "LMPOP 2 {t}nx {t}d RIGHT COUNT 9", "LMPOP 1 {t}nx LEFT",
    "RPUSH {t}b 1 2 3", "BLPOP {t}b 0", "BRPOP {t}nx {t}b 0", "BLMOVE {t}b {t}c LEFT RIGHT 0",
    "BRPOPLPUSH {t}c {t}b 0", "BLMPOP 0 1 {t}b RIGHT COUNT 5", "BLPOP {t}nx 0.01",
    "RPUSH {t}e a", "PEXPIREAT {t}e 1", "RPUSH {t}e b",
    "LRANGE {t}e 0 -1", "LLEN {t}e", "LINDEX {t}e 0", "LPOS {t}e b",
]

SETS = [
    "SADD {t}s a b c", "SADD {t}s a", "SREM {t}s zz", "SREM {t}s a", "SREM {t}nx a",
    "SMOVE {t}s {t}t b", "SMOVE {t}s {t}t zz", "SMOVE {t}s {t}s c", "SMOVE {t}s {t}t c",
    "SADD {t}t b", "SMOVE {t}t {t}t b", "SADD {t}u b", "SMOVE {t}t {t}u b", "SMOVE {t}nx {t}u b",
    "SET {t}str v", "SMOVE {t}u {t}str b",
    "SPOP {t}t", "SPOP {t}t", "SADD {t}p 1 2 3 4 5 6 7 8 9 10", "SPOP {t}p 0", "SPOP {t}p 2",
    "SPOP {t}p 7", "SPOP {t}p 100", "SPOP {t}p 1", "SPOP {t}nx", "SADD {t}q 1 2 3", "SPOP {t}q 3",
    "SADD {t}a 1 2 3", "SADD {t}b 2 3 4", "SINTERSTORE {t}d {t}a {t}b",
    "SUNIONSTORE {t}d {t}a {t}b", "SDIFFSTORE {t}d {t}a {t}b", "SINTERSTORE {t}d {t}a {t}nx",
    "SINTERSTORE {t}d {t}a {t}nx", "SUNIONSTORE {t}e {t}nx", "SDIFFSTORE {t}e {t}nx", "SADD {t}a 9",
    "SDIFFSTORE {t}a {t}a {t}b", "SINTERSTORE {t}str {t}a", "SUNIONSTORE {t}a {t}str",
    "SREM {t}a 1 9", "SADD {t}x 1", "PEXPIREAT {t}x 1", "SADD {t}x 2", "SMEMBERS {t}x",
    "SINTERCARD 1 {t}x", "SISMEMBER {t}x 1", "SRANDMEMBER {t}x", "SSCAN {t}x 0", "SINTER {t}x {t}b",
]

ZSETS = [
    "ZADD {t}z 1 a 2 b 3 c", "ZADD {t}z 1 a", "ZADD {t}z XX 1 nx", "ZADD {t}nx XX 1 a",
    "ZINCRBY {t}z 1 a", "ZREM {t}z nope", "ZREM {t}z a", "ZREMRANGEBYSCORE {t}z 0 2",
    "ZUNIONSTORE {t}u 1 {t}z", "ZPOPMAX {t}z", "ZINTERSTORE {t}u 2 {t}u {t}nx",
    "ZRANGESTORE {t}r {t}nx 0 -1", "ZADD {t}y 1 a 2 b", "ZPOPMIN {t}y 5", "ZADD {t}y 1 a",
    "BZPOPMIN {t}y 0", "ZADD {t}y 1 a 2 b", "ZMPOP 1 {t}y MAX COUNT 1",
    "ZRANGESTORE {t}r {t}y 0 -1",
]

FAMILIES = {"strings": STRINGS, "keys": KEYS, "hashes": HASHES, "lists": LISTS, "sets": SETS,
            "zsets": ZSETS}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_events(sides, family):
    assert_same(sides, FAMILIES[family])


# Each class letter on its own (and a few mixes) lets through exactly its events.
@pytest.mark.parametrize("flags", ["KEA", "K$", "El", "Kg", "Es", "Kh", "Ez", "Kx", "Ex", "En",
                                   "Kn", "KEg$lshzxn", "E$n", "Ag", "K", "E"])
def test_event_classes(sides, flags):
    script = (STRINGS[:12] + KEYS[30:42] + HASHES[:6] + LISTS[:12] + SETS[:10] + ZSETS[:8]
              + ["SET {t}x v PXAT 1", "GET {t}x"])
    assert_same(sides, script, flags)


def test_keys_on_both_shards(sides):
    """Multi-key commands split by shard; each key's messages keep their order."""
    spread = one_per_shard(SHARDS, prefix="spread") + one_per_shard(SHARDS, prefix="more")
    a, b, c, d = spread
    script = [
        "MSET %s 1 %s 2 %s 3 %s 4" % (a, b, c, d), "INCR %s" % a, "INCR %s" % b,
        "EXPIRE %s 100" % c, "DEL %s %s %s nosuch" % (a, b, c), "LPUSH %s x" % a,
        "SADD %s x" % b, "UNLINK %s %s %s" % (a, b, d), "HSET %s f v" % c, "PERSIST %s" % c,
        "EXPIRE %s 100" % c, "PERSIST %s" % c, "MSET %s 1 %s 2" % (b, d), "GETDEL %s" % b,
    ]
    expected, got = run(sides, script)
    _same_per_key(expected, got, spread)
    assert sorted(got) == sorted(expected)


def _same_per_key(expected, got, keys):
    for key in keys:
        mine = [m for m in got if m[2] == key.encode()]
        theirs = [m for m in expected if m[2] == key.encode()]
        assert mine == theirs, "key %s:\n%s" % (key, _diff(theirs, mine))


def test_one_command_on_keys_of_both_shards(sides):
    a, b = one_per_shard(SHARDS, prefix="across")
    script = [
        "SET %s 1" % a, "RENAME %s %s" % (a, b), "SADD %s m" % a, "SMOVE %s %s m" % (a, b),
        "RPUSH %s m" % a, "DEL %s" % b, "LMOVE %s %s LEFT LEFT" % (a, b), "COPY %s %s" % (b, a),
    ]
    expected, got = run(sides, script)
    _same_per_key(expected, got, (a, b))


def test_blocked_client_served_by_a_push(sides, redis_ref, fastcache_server):
    """A blocked BLPOP / BLMOVE served by another client's push: the push's
    events, then the pop's. (Should the push win the race against the block,
    the events are the same.)"""
    for tag in TAGS:
        lst, src, dst = ("{%s}%s" % (tag, name) for name in ("l", "src", "dst"))
        results = []
        for side, port in zip(sides, (redis_ref.port, fastcache_server.port)):
            side.call("FLUSHALL")
            side.set_flags("KEAn")
            waiter = RawClient(port, timeout=5)
            try:
                waiter.send(encode_command(("BLPOP", lst, "0")))
                side.call("RPUSH", lst, "a", "b")
                assert waiter.read_reply() == encode_command((lst, "a"))
                waiter.send(encode_command(("BLMOVE", src, dst, "LEFT", "RIGHT", "0")))
                side.call("LPUSH", src, "v")
                assert waiter.read_reply() == b"$1\r\nv\r\n"
            finally:
                waiter.close()
            results.append(side.collect())
        expected, got = results
        assert got == expected, "tag %s:\n%s" % (tag, _diff(expected, got))
