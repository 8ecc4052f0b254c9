"""Per-connection reply order, sans-IO.

A connection's replies must leave in request order, but some are produced
elsewhere: by the shard that owns the key (forwards), or later (fan-outs,
cross-shard commands). Replies of one pass over the input are collected in
`out`; a forwarded command leaves its owner's shard number there as a
placeholder, and a later reply a Slot. When the pass ends (`cut`), a pass
with nothing owed is returned for writing at once; otherwise it waits in
`pending` until every placeholder is filled, behind the passes before it.

One request per owner per pass carries all of that pass's forwards, and its
reply fills all their placeholders in one go.
"""
from collections import deque
from functools import partial


class Slot:
    """A place for a reply that a fan-out or cross-shard command delivers later."""
    __slots__ = ("data", "entry")

    def __init__(self):
        self.data = None
        self.entry = None


class _Pass:
    __slots__ = ("out", "remaining")

    def __init__(self, out):
        self.out = out
        self.remaining = 0


class ReplyOrder:
    def __init__(self, nshards, write):
        self.write = write          # write(bytes): send replies that are ready
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
        """End the pass. send(owner, argvs, on_replies) posts its forwards;
        the replies that can go out now are written."""
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
            for item in out:
                if type(item) is Slot and item.data is None:
                    item.entry = entry
                    entry.remaining += 1
        if self.nfwd:
            self.nfwd = 0
            positions = {}
            for i, item in enumerate(out):
                if type(item) is int:
                    positions.setdefault(item, []).append(i)
            fwd = self.fwd
            for owner, at in positions.items():
                argvs = fwd[owner]
                fwd[owner] = []
                entry.remaining += 1
                send(owner, argvs, partial(self._replied, entry, at))
        self.pending.append(entry)
        self._release()

    def _replied(self, entry, positions, replies):
        out = entry.out
        for at, data in zip(positions, replies):
            out[at] = data
        entry.remaining -= 1
        if not entry.remaining:
            self._release()

    def _release(self):
        """Write every finished pass at the head of the queue."""
        pending = self.pending
        chunks = []
        while pending and not pending[0].remaining:
            for item in pending.popleft().out:
                chunks.append(item if type(item) is bytes else item.data)
        if chunks:
            self.write(b"".join(chunks))
