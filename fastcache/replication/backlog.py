"""A shard's replication backlog: its newest RECORDS frames, for partial resyncs.

A replica that reconnects sends its watermark, the last sequence it applied.
If the backlog still holds every record after it, the primary sends those
frames and the replica carries on; otherwise it needs a full resync.

Frames are kept whole, so a watermark that falls inside a frame (the replica
applied part of it, or the frame was cut differently from what the replica
saw) is served that whole frame: the replica skips the records up to its
watermark (``Frame.records(after=watermark)``).
"""
from bisect import bisect_right

_COMPACT_AT = 64   # evicted slots tolerated before the lists are shifted


class Backlog:
    """Frames covering the sequences first_seq..last_seq, at most max_bytes of them
    (but always the newest frame, however large)."""

    def __init__(self, max_bytes, last_seq=0):
        self.max_bytes = max_bytes
        self.size = 0
        self._frames = []
        self._firsts = []     # first seq of each frame, for bisect
        self._head = 0        # index of the oldest frame still held
        self._last_seq = last_seq

    def __len__(self):
        return len(self._frames) - self._head

    @property
    def last_seq(self):
        """The newest sequence appended (or the starting one)."""
        return self._last_seq

    @property
    def first_seq(self):
        """The oldest sequence held; last_seq + 1 when nothing is."""
        if self._head < len(self._firsts):
            return self._firsts[self._head]
        return self._last_seq + 1

    def reset(self, last_seq):
        """Forget every frame; the next one appended starts after last_seq."""
        self._frames = []
        self._firsts = []
        self._head = 0
        self.size = 0
        self._last_seq = last_seq

    def append(self, frame_bytes, first_seq, last_seq):
        """Keep the frame holding first_seq..last_seq, evicting the oldest past max_bytes.

        Sequences skipped since the last frame leave a hole no replica can be
        carried across, so everything older is dropped."""
        if last_seq < first_seq:
            raise ValueError("frame sequences %d..%d run backwards" % (first_seq, last_seq))
        if first_seq <= self._last_seq:
            raise ValueError("frame from seq %d overlaps the backlog, which ends at %d"
                             % (first_seq, self._last_seq))
        if first_seq != self._last_seq + 1:
            self.reset(first_seq - 1)
        self._frames.append(frame_bytes)
        self._firsts.append(first_seq)
        self._last_seq = last_seq
        self.size += len(frame_bytes)
        if self.size > self.max_bytes:
            self._evict()

    def since(self, seq):
        """The frames holding every record after seq, oldest first; [] when seq is
        the newest; None when the backlog no longer reaches back to seq + 1 (or
        seq is ahead of it): then only a full resync will do."""
        if seq == self._last_seq:
            return []
        if seq > self._last_seq or seq < self.first_seq - 1:
            return None
        i = bisect_right(self._firsts, seq + 1, self._head) - 1
        return self._frames[i:]

    def _evict(self):
        frames = self._frames
        head = self._head
        last = len(frames) - 1
        while self.size > self.max_bytes and head < last:
            self.size -= len(frames[head])
            frames[head] = None
            head += 1
        if head >= _COMPACT_AT and head * 2 >= len(frames):
            del frames[:head]
            del self._firsts[:head]
            head = 0
        self._head = head
