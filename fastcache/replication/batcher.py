"""Batching a shard's mutation records into RECORDS frames.

A batch flushes at ``max_records`` records, at ``max_bytes`` of raw payload,
or once its oldest record has waited ``max_delay_us``, whichever comes first.
A record that would take the batch past ``max_bytes`` first flushes what is
buffered, so a frame exceeds max_bytes only when one record alone does.
With ``immediate`` there is no waiting: due() flushes whatever is buffered,
so the worker ships one frame per loop pass (it calls due() or flush() once
it has run the pass's commands).

The batcher does no I/O and keeps no timer: the owner asks due(now) when its
loop wakes, and ``deadline_us`` says when it has to wake at the latest.
"""
import time

from fastcache.replication.frames import RECORDS, FrameEncoder, encode_entries


def monotonic_us():
    return time.monotonic_ns() // 1000


class Batcher:
    """Buffers records of one shard and cuts them into frames.

    Counters, for INFO: ``frames`` and ``records`` emitted, ``raw_bytes``
    (payloads before compression) and ``wire_bytes`` (whole frames as sent,
    headers included)."""

    def __init__(self, shard, max_records, max_bytes, max_delay_us, level=None,
                 immediate=False, clock=monotonic_us):
        if max_records < 1 or max_bytes < 1 or max_delay_us < 0:
            raise ValueError("batch limits must be positive")
        self.shard = shard
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.max_delay_us = max_delay_us
        self.immediate = immediate
        self._clock = clock
        self._encoder = FrameEncoder(level)
        self._parts = []
        self._count = 0
        self._bytes = 0
        self._first_seq = 0
        self._next_seq = 0
        self._oldest_us = 0
        self.frames = 0
        self.records = 0
        self.raw_bytes = 0
        self.wire_bytes = 0

    @property
    def pending(self):
        """Records buffered, not yet in a frame."""
        return self._count

    @property
    def deadline_us(self):
        """When due() will flush the buffered records; None when nothing is buffered."""
        if not self._count:
            return None
        return self._oldest_us if self.immediate else self._oldest_us + self.max_delay_us

    @property
    def compression_ratio(self):
        """Raw payload bytes per wire byte sent so far (1.0 before any frame)."""
        return self.raw_bytes / self.wire_bytes if self.wire_bytes else 1.0

    def add(self, seq, db, argv):
        """Buffer one record; the frames (bytes) it made ready, usually none."""
        return self.add_entries(seq, [db, argv])

    def add_entries(self, seq, entries):
        """Buffer the records of a journal's entries (argvs numbered from seq,
        with an int wherever the db changes: Journal.take_entries); the frames
        they made ready.

        A seq that does not follow the buffered ones starts a new frame, since
        a frame's sequences are implied consecutive. A record that would take
        the frame past max_bytes goes to the next one, unless it is alone."""
        ready = []
        if self._count and seq != self._next_seq and not all(type(e) is int for e in entries):
            ready.append(self._emit())
        pos, n, db = 0, len(entries), 0
        while pos < n:
            blob, k, pos, db = encode_entries(entries, pos, db, self.max_records - self._count,
                                              self.max_bytes - self._bytes, not self._count)
            if k:
                if not self._count:
                    self._first_seq = seq
                    self._oldest_us = self._clock()
                self._parts.append(blob)
                self._count += k
                self._bytes += len(blob)
                seq += k
                self._next_seq = seq
            if self._count >= self.max_records or self._bytes >= self.max_bytes or \
                    (not k and pos < n):
                ready.append(self._emit())
        return ready

    def due(self, now_us):
        """The buffered records as one frame if their time has come, else None."""
        if self._count and (self.immediate or now_us - self._oldest_us >= self.max_delay_us):
            return self._emit()
        return None

    def flush(self):
        """The buffered records as one frame now; None when nothing is buffered."""
        return self._emit() if self._count else None

    def _emit(self):
        raw = b"".join(self._parts)
        count = self._count
        frame = self._encoder.encode(RECORDS, self.shard, self._first_seq,
                                     self._first_seq + count - 1, count, raw)
        self._parts = []
        self._count = 0
        self._bytes = 0
        self.frames += 1
        self.records += count
        self.raw_bytes += len(raw)
        self.wire_bytes += len(frame)
        return frame
