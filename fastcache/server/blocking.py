"""Blocking pops and moves: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP.

A blocking command becomes a spec, (kind, keys, args): what to try and
which keys to wait on. It always runs on the client's own worker.

- Every key on one shard (the common case): the owner tries at once and
  otherwise queues a waiter on each key. After any command that changed one
  of those keys, the owner serves its waiters first come, first served, and
  sends the result back. Trying, waiting and timing out all happen at the
  owner, so no push is missed and no popped value can race a timeout.
- Keys on several shards: each owner only says "ready" when a key changes;
  the client's worker then tries the keys in order through the usual routes.

Inside EXEC a blocking command does not block: like Redis, it answers what
it finds now, or its timeout reply.
"""
import asyncio
import math
from collections import deque
from itertools import count

from fastcache.engine import lists, zsets
from fastcache.engine.zset_type import ZSet
from fastcache.engine.args import parse_float
from fastcache.engine.errors import CommandError
from fastcache.engine.registry import LOCAL, command, resolve
from fastcache.protocol.replies import DEFERRED, NULL_ARRAY, Error, NullArray
from fastcache.server import crossshard

TIMEOUT_NOT_FLOAT = "ERR timeout is not a float or out of range"
TIMEOUT_NEGATIVE = "ERR timeout is negative"
# What an owner sends back instead of a result (plain strings survive pickling).
TIMED_OUT = "fastcache:blocking:timeout"
READY = "fastcache:blocking:ready"

_tokens = count(1)


def parse_timeout(raw):
    """Seconds to wait (0: for ever), with Redis's errors."""
    seconds = parse_float(raw, TIMEOUT_NOT_FLOAT)
    # Redis converts to milliseconds in a long long: overflow reads as negative.
    if seconds < 0 or math.isinf(seconds) or seconds * 1000 >= 2 ** 63:
        raise CommandError(TIMEOUT_NEGATIVE)
    return seconds


# -- attempts: run at the owner, return a reply or None for "nothing yet" -------

def _try_pop(ks, db, keys, args):
    (left,) = args
    for key in keys:
        value = lists.pop(ks, db, key, left)
        if value is not None:
            return [key, value]
    return None


def _try_move(ks, db, keys, args):
    destination, from_left, to_left = args
    return lists.move(ks, db, keys[0], destination, from_left, to_left)


def _try_mpop(ks, db, keys, args):
    left, n = args
    return lists.mpop(ks, db, keys, left, n)


def _zpop_first(ks, db, keys, from_max, count):
    for key in keys:
        zs = ks.get_for_write(db, key, ZSet)
        if zs is not None:
            return key, zsets.pop(ks, db, key, zs, count, from_max)
    return None, None


def _try_zpop(ks, db, keys, args):
    key, taken = _zpop_first(ks, db, keys, args[0], 1)
    if key is None:
        return None
    score, member = taken[0]
    return [key, member, score]


def _try_zmpop(ks, db, keys, args):
    key, taken = _zpop_first(ks, db, keys, *args)
    if key is None:
        return None
    return [key, [[member, score] for score, member in taken]]


ATTEMPTS = {"pop": _try_pop, "move": _try_move, "mpop": _try_mpop,
            "zpop": _try_zpop, "zmpop": _try_zmpop}


def _record_of(kind, keys, args, result):
    """The deterministic record of a served attempt (engine/records.py)."""
    if kind == "move":
        return _lmove_argv(keys[0], args[0], args[1], args[2])
    key = result[0]
    if kind == "pop":
        return [b"LPOP" if args[0] else b"RPOP", key]
    if kind == "mpop":
        return [b"LPOP" if args[0] else b"RPOP", key, b"%d" % len(result[1])]
    if kind == "zpop":
        return [b"ZREM", key, result[1]]
    return [b"ZREM", key] + [member for member, _ in result[1]]


def written_keys(kind, keys, args):
    """Keys an attempt may change (their waiters and watchers must hear of it)."""
    return list(keys) + [args[0]] if kind == "move" else list(keys)


def attempt(worker, dbid, spec):
    kind, keys, args = spec
    ks = worker.ks
    dirty = ks.dirty
    try:
        result = ATTEMPTS[kind](ks, ks.dbs[dbid], keys, args)
    except CommandError as exc:
        return Error(exc.message)
    if ks.dirty != dirty:
        if ks.journal is not None:
            ks.journal.log(dbid, _record_of(kind, keys, args, result))
        changed = written_keys(kind, keys, args)
        if ks.watched:
            for key in changed:
                ks.touch(dbid, key)
        keys_changed(worker, dbid, changed)
    return result


# -- the owner's side -----------------------------------------------------------

class Waiter:
    __slots__ = ("dbid", "spec", "reply", "notify", "timer", "token")

    def __init__(self, dbid, spec, reply, notify, token):
        self.dbid = dbid
        self.spec = spec
        self.reply = reply
        self.notify = notify
        self.token = token
        self.timer = None


class Waiters:
    """One worker's blocked clients: (db, key) -> FIFO of waiters."""

    def __init__(self):
        self.by_key = {}
        self.by_token = {}
        self.ready = set()
        self.scheduled = False


def block(worker, dbid, spec, timeout, reply, notify, token):
    """Try now (unless notify); otherwise queue a waiter. reply(result) runs
    exactly once: with a result, TIMED_OUT, or READY (notify mode)."""
    if not notify:
        result = attempt(worker, dbid, spec)
        if result is not None:
            reply(result)
            return
    waiters = worker.waiters
    waiter = Waiter(dbid, spec, reply, notify, token)
    for key in spec[1]:
        waiters.by_key.setdefault((dbid, key), deque()).append(waiter)
    waiters.by_token[token] = waiter
    if timeout:
        waiter.timer = worker.loop.call_later(timeout, _finish, worker, waiter, TIMED_OUT)


def cancel(worker, token):
    waiter = worker.waiters.by_token.get(token)
    if waiter is not None:
        _remove(worker, waiter)


def _remove(worker, waiter):
    waiters = worker.waiters
    waiters.by_token.pop(waiter.token, None)
    if waiter.timer is not None:
        waiter.timer.cancel()
    for key in waiter.spec[1]:
        queue = waiters.by_key.get((waiter.dbid, key))
        if queue is not None:
            try:
                queue.remove(waiter)
            except ValueError:
                pass
            if not queue:
                del waiters.by_key[(waiter.dbid, key)]


def _finish(worker, waiter, result):
    _remove(worker, waiter)
    waiter.reply(result)


def keys_changed(worker, dbid, keys):
    """Called after a command changed keys: serve their waiters once the
    command (and any transaction holding this shard) is over."""
    waiters = worker.waiters
    if not waiters.by_key:
        return
    for key in keys:
        if (dbid, key) in waiters.by_key:
            waiters.ready.add((dbid, key))
    if waiters.ready and not waiters.scheduled:
        waiters.scheduled = True
        worker.loop.call_soon(serve_ready, worker)


def serve_ready(worker):
    waiters = worker.waiters
    waiters.scheduled = False
    if worker.lock is not None:
        return  # unlock() calls again
    while waiters.ready:
        dbid, key = waiters.ready.pop()
        queue = waiters.by_key.get((dbid, key))
        while queue:
            waiter = queue[0]
            if waiter.notify:
                _finish(worker, waiter, READY)
                continue
            result = attempt(worker, dbid, waiter.spec)
            if result is None:
                break
            _finish(worker, waiter, result)
            queue = waiters.by_key.get((dbid, key))


def peer_block(worker, payload, reply):
    dbid, spec, timeout, notify, token = payload
    block(worker, dbid, spec, timeout, reply, notify, token)


def peer_cancel(worker, token, txn):
    cancel(worker, token)
    return True


# -- the client's side ----------------------------------------------------------

def _owners(worker, spec):
    kind, keys, args = spec
    return {worker.owner_of(key) for key in written_keys(kind, keys, args)}


def start(ctx, spec, timeout, timeout_reply):
    """Run a blocking command for ctx.client; the reply comes when it is served."""
    client = ctx.client
    worker = client.worker
    owners = _owners(worker, spec)
    if client.in_exec:
        if owners == {worker.index}:
            result = attempt(worker, ctx.db.id, spec)
            return timeout_reply if result is None else result
        return timeout_reply
    if len(owners) == 1:
        client.run_async(_wait_at_owner(client, owners.pop(), spec, timeout, timeout_reply))
    else:
        client.run_async(_wait_across(client, owners, spec, timeout, timeout_reply))
    return DEFERRED


def _register(client, owner, spec, timeout, notify):
    """(future of the owner's answer, token)."""
    worker = client.worker
    future = worker.loop.create_future()
    token = (worker.index, next(_tokens))

    def answer(result):
        if not future.done():
            future.set_result(result)

    payload = (client.ctx.db.id, spec, timeout, notify, token)
    if owner == worker.index:
        block(worker, payload[0], spec, timeout, answer, notify, token)
    else:
        worker.peers[owner].request("block", payload, answer)
    client.blocked_on.append((owner, token))
    return future, token


def unregister(client):
    worker = client.worker
    for owner, token in client.blocked_on:
        if owner == worker.index:
            cancel(worker, token)
        elif worker.peers[owner] is not None:
            worker.peers[owner].request("unblock", token, _ignore)
    client.blocked_on = []


def _ignore(result):
    pass


async def _wait_at_owner(client, owner, spec, timeout, timeout_reply):
    future, _ = _register(client, owner, spec, timeout, notify=False)
    try:
        result = await future
    finally:
        client.blocked_on = []
    return timeout_reply if result == TIMED_OUT else result


async def _wait_across(client, owners, spec, timeout, timeout_reply):
    """Keys on several shards: register for "ready" everywhere, then try; on
    ready, try again. Registering first means no push falls in between."""
    loop = client.worker.loop
    deadline = loop.time() + timeout if timeout else None
    while True:
        left = deadline - loop.time() if deadline is not None else 0
        if deadline is not None and left <= 0:
            return timeout_reply
        futures = [_register(client, owner, spec, left, notify=True)[0] for owner in owners]
        try:
            result = await _attempt_routed(client, spec)
            if result is not None:
                return result
            done, _ = await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
            if any(f.result() == TIMED_OUT for f in done):
                return timeout_reply
        finally:
            unregister(client)


async def _attempt_routed(client, spec):
    """The non-blocking form of spec, each key through its owner, in key order."""
    kind, keys, args = spec
    worker = client.worker
    if kind == "move":
        src, (dst, from_left, to_left) = keys[0], args
        argv = _lmove_argv(src, dst, from_left, to_left)
        return await crossshard.locked_run(client, resolve(argv), argv,
                                           {worker.owner_of(src): {src}, worker.owner_of(dst): {dst}})
    for key in keys:
        argv = _non_blocking(kind, key, args)
        result = await crossshard.ask(client, worker.owner_of(key), argv, None)
        if type(result) is Error:
            return result
        if result is not None and type(result) is not NullArray and result != []:
            return _as_blocking_reply(kind, key, result)
    return None


def _lmove_argv(src, dst, from_left, to_left):
    return [b"LMOVE", src, dst, b"LEFT" if from_left else b"RIGHT",
            b"LEFT" if to_left else b"RIGHT"]


def _as_blocking_reply(kind, key, result):
    """The non-blocking command's reply reshaped as the blocking one's."""
    if kind == "pop":
        return [key, result]      # LPOP: value -> BLPOP: [key, value]
    if kind == "zpop":
        return [key] + result     # ZPOPMIN: [member, score] -> [key, member, score]
    return result                 # LMPOP/ZMPOP already name the key


def _non_blocking(kind, key, args):
    """The one-key, non-blocking command an attempt on key amounts to."""
    if kind == "pop":
        return [b"LPOP" if args[0] else b"RPOP", key]
    if kind == "mpop":
        return [b"LMPOP", b"1", key, b"LEFT" if args[0] else b"RIGHT", b"COUNT", b"%d" % args[1]]
    if kind == "zpop":
        return [b"ZPOPMAX" if args[0] else b"ZPOPMIN", key]
    return [b"ZMPOP", b"1", key, b"MAX" if args[0] else b"MIN", b"COUNT", b"%d" % args[1]]


# -- the commands -------------------------------------------------------------------
# Each blocking command is a parser, argv -> (spec, timeout, timeout reply), checked in
# Redis's order; the handler runs it with start(), and EXEC runs it with attempt_in_txn().

LIST = "list"
PARSERS = {}


def blocking_command(name, arity, flags, keys=(0, 0, 0), **entry):
    """Register a blocking command whose handler starts what parse(argv) describes."""
    def decorate(parse):
        PARSERS[name] = parse

        def handler(ctx, argv):
            return start(ctx, *parse(argv))

        command(name, arity, flags, keys, route=LOCAL, **entry)(handler)
        return parse
    return decorate


@blocking_command("blpop", -3, "write noscript blocking", (1, -2, 1), group=LIST, since="2.0.0",
                  summary="Remove and get the first element in a list, or block until one is available",
                  acl="@write @list @slow @blocking")
def blpop(argv):
    return ("pop", argv[1:-1], (True,)), parse_timeout(argv[-1]), NULL_ARRAY


@blocking_command("brpop", -3, "write noscript blocking", (1, -2, 1), group=LIST, since="2.0.0",
                  summary="Remove and get the last element in a list, or block until one is available",
                  acl="@write @list @slow @blocking")
def brpop(argv):
    return ("pop", argv[1:-1], (False,)), parse_timeout(argv[-1]), NULL_ARRAY


@blocking_command("blmove", 6, "write denyoom noscript blocking", (1, 2, 1), group=LIST,
                  since="6.2.0", summary="Pop an element from a list, push it to another list and return it; or block until one is available",
                  acl="@write @list @slow @blocking")
def blmove(argv):
    from_left = lists.parse_side(argv[3])
    to_left = lists.parse_side(argv[4])
    timeout = parse_timeout(argv[5])
    return ("move", [argv[1]], (argv[2], from_left, to_left)), timeout, NULL_ARRAY


@blocking_command("brpoplpush", 4, "write denyoom noscript blocking", (1, 2, 1), group=LIST,
                  since="2.2.0", summary="Pop an element from a list, push it to another list and return it; or block until one is available",
                  acl="@write @list @slow @blocking")
def brpoplpush(argv):
    return ("move", [argv[1]], (argv[2], False, True)), parse_timeout(argv[3]), NULL_ARRAY


@blocking_command("blmpop", -5, "write blocking", get_keys=lambda argv: lists.numkeys_keys(argv, 2),
                  group=LIST, since="7.0.0",
                  summary="Pop elements from a list, or block until one is available",
                  acl="@write @list @slow @blocking")
def blmpop(argv):
    timeout = parse_timeout(argv[1])
    keys, left, n = lists.parse_mpop(argv, 2)
    return ("mpop", keys, (left, n)), timeout, NULL_ARRAY


ZSET = "sorted-set"
ZSET_ACL = "@write @sortedset @fast @blocking"


@blocking_command("bzpopmin", -3, "write noscript blocking fast", (1, -2, 1), group=ZSET,
                  since="5.0.0", acl=ZSET_ACL,
                  summary="Remove and return the member with the lowest score from one or more sorted sets, or block until one is available")
def bzpopmin(argv):
    return ("zpop", argv[1:-1], (False,)), parse_timeout(argv[-1]), NULL_ARRAY


@blocking_command("bzpopmax", -3, "write noscript blocking fast", (1, -2, 1), group=ZSET,
                  since="5.0.0", acl=ZSET_ACL,
                  summary="Remove and return the member with the highest score from one or more sorted sets, or block until one is available")
def bzpopmax(argv):
    return ("zpop", argv[1:-1], (True,)), parse_timeout(argv[-1]), NULL_ARRAY


@blocking_command("bzmpop", -5, "write blocking", get_keys=lambda argv: lists.numkeys_keys(argv, 2),
                  group=ZSET, since="7.0.0", acl="@write @sortedset @slow @blocking",
                  summary="Remove and return members with scores in a sorted set or block until one is available")
def bzmpop(argv):
    timeout = parse_timeout(argv[1])
    keys, from_max, n = zsets.parse_mpop(argv, 2)
    return ("zmpop", keys, (from_max, n)), timeout, NULL_ARRAY


async def attempt_in_txn(client, parse, argv, txn):
    """A blocking command queued in a cross-shard EXEC: like Redis, it does not
    block; it tries now, each key where it lives (under the transaction's locks)."""
    try:
        spec, _, timeout_reply = parse(argv)
    except CommandError as exc:
        return Error(exc.message)
    kind, keys, args = spec
    worker = client.worker
    dbid = client.ctx.db.id
    owners = _owners(worker, spec)
    parts = [spec] if len(owners) == 1 else [(kind, [key], args) for key in keys]
    if kind == "move" and len(owners) > 1:
        src, dst = keys[0], args[0]
        argv = _lmove_argv(src, dst, args[1], args[2])
        by_shard = {}
        for key in (src, dst):
            by_shard.setdefault(worker.owner_of(key), set()).add(key)
        result = await crossshard.run_on_copies(client, resolve(argv), argv, by_shard, txn)
        return timeout_reply if result is None else result
    for part in parts:
        owner = worker.owner_of(part[1][0])
        if owner == worker.index:
            result = attempt(worker, dbid, part)
        else:
            result = await worker.peers[owner].call("attempt", (dbid, part), txn)
        if result is not None:
            return result
    return timeout_reply


def peer_attempt(worker, payload, txn):
    dbid, spec = payload
    return attempt(worker, dbid, spec)
