"""Run the same commands against several targets and require identical reply bytes.

A target has call(*args) -> raw reply bytes. Targets: a real redis-server
(RawClient), a fastcache-server (RawClient), or the engine in-process.
"""
from fastcache.engine.context import Context
from fastcache.engine.dispatch import execute
from fastcache.engine.keyspace import Keyspace
from fastcache.protocol.encoder import encode


class EngineTarget:
    """The engine called directly, replies encoded as a server would."""

    def __init__(self, proto=2, databases=16):
        self.ctx = Context(Keyspace(databases), proto=proto)

    def call(self, *args):
        argv = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        return encode(execute(self.ctx, argv), self.ctx.proto)


def compare(targets, script, normalize=None):
    """Run each command of script on every target; replies must match.

    A script entry is a tuple of args, or (args, normalizer) where the
    normalizer maps raw reply bytes to something comparable (for replies
    whose order or exact value legitimately differ, e.g. TTLs).
    """
    for entry in script:
        norm = normalize
        if len(entry) == 2 and isinstance(entry[0], (tuple, list)):
            entry, norm = entry
        replies = [t.call(*entry) for t in targets]
        if norm is not None:
            replies = [norm(r) for r in replies]
        first = replies[0]
        for r in replies[1:]:
            assert r == first, "command %r: %r != %r" % (entry, first, r)
