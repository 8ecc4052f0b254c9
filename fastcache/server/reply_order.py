"""Per-connection reply order, sans-IO.

A connection's replies must leave in request order, but some are produced
elsewhere: by the shard that owns the key (forwards), or later (fan-outs,
cross-shard commands). Replies of one pass over the input are collected in
`out`; a forwarded command leaves its owner's shard number there as a
placeholder, and a later reply a Slot. When the pass ends (`cut`), a pass
with nothing owed is returned for writing at once; otherwise it waits in
`pending` until every placeholder is filled, behind the passes before it.

One request per owner per pass carries all of that pass's forwards; its reply
is those commands' replies packed together (forward_codec), which fill their
placeholders, in order, when the pass is written.
"""
from collections import deque
from functools import partial

from fastcache.server.forward_codec import assemble


class Slot:
    """A place for a reply that a fan-out or cross-shard command delivers later."""
    __slots__ = ("data", "entry")

    def __init__(self):
        self.data = None
        self.entry = None


class _Pass:
    __slots__ = ("out", "remaining", "packs", "slots")

    def __init__(self, out):
        self.out = out
        self.remaining = 0
        self.packs = None       # per shard: its packed replies to this pass's forwards
        self.slots = False      # out holds Slots

    def output(self):
        out = self.out
        if self.slots:
            out = [item.data if type(item) is Slot else item for item in out]
        if self.packs is not None:
            return assemble(out, self.packs)
        return b"".join(out)


class ReplyOrder:
    def __init__(self, nshards, write):
        self.write = write          # write(bytes): send replies that are ready
        self.nshards = nshards
        self.out = []               # this pass: bytes, owner shard numbers, Slots
        self.fwd = [[] for _ in range(nshards)] if nshards > 1 else None
        self.nfwd = 0               # forwards queued in this pass
        self.reserved = 0           # Slots taken in this pass
        self.pending = deque()      # earlier passes still owed something

    def idle(self):
        return not self.out and not self.pending

    def forward(self, owner, argv):
        self.fwd[owner].append(argv)
        self.out.append(owner)
        self.nfwd += 1

    def reserve(self):
        slot = Slot()
        self.out.append(slot)
        self.reserved += 1
        return slot

    def fill(self, slot, data):
        slot.data = data
        entry = slot.entry
        if entry is not None:
            entry.remaining -= 1
            if not entry.remaining:
                self._release()

    def cut(self, send):
        """End the pass. send(owner, argvs, on_replies) posts its forwards, and
        on_replies(packed) takes their replies as forward_codec.pack_replies
        made them; the replies that can go out now are written."""
        out = self.out
        if not out:
            return
        self.out = []
        if not (self.nfwd or self.reserved or self.pending):
            self.write(b"".join(out) if len(out) > 1 else out[0])
            return
        entry = _Pass(out)
        if self.reserved:
            self.reserved = 0
            entry.slots = True
            for item in out:
                if type(item) is Slot and item.data is None:
                    item.entry = entry
                    entry.remaining += 1
        if self.nfwd:
            self.nfwd = 0
            entry.packs = [None] * self.nshards
            fwd = self.fwd
            for owner, argvs in enumerate(fwd):
                if argvs:
                    fwd[owner] = []
                    entry.remaining += 1
                    send(owner, argvs, partial(self._replied, entry, owner))
        self.pending.append(entry)
        if not entry.remaining:  # else the head still owes (a finished head is written at once)
            self._release()

    def _replied(self, entry, owner, packed):
        entry.packs[owner] = packed
        entry.remaining -= 1
        if not entry.remaining:
            self._release()

    def _release(self):
        """Write every finished pass at the head of the queue."""
        pending = self.pending
        if not pending or pending[0].remaining:
            return
        chunks = []
        while pending and not pending[0].remaining:
            chunks.append(pending.popleft().output())
        self.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))
