"""A replica shard's marks: how far it has applied each primary shard's stream.

A replica shard r keeps, for each primary shard s, the sequence of the last
record of s it applied (mark[s]), and the primary's replication ID and shard
count those sequences belong to. They travel with r's own data, so a replica
restarted from disk resumes where its data stands:

- in r's WAL, as two record kinds the recovery path understands:
  ``[APPLIED, s, q, *argv]``: argv (maybe empty) was applied as record q of
  primary shard s, so mark[s] = q (q < 0 forgets the mark: s needs a full
  copy); ``[ORIGIN, replid, nshards]``: the marks now refer to this primary,
  every earlier mark is void;
- in r's snapshots, as a JSON sidecar ``snap-<seq>.marks`` next to the
  snapshot, written before it and removed with it.
"""
import json
import os

APPLIED = b"FC.APPLIED"
ORIGIN = b"FC.ORIGIN"


class Marks:
    __slots__ = ("replid", "nshards", "seqs")

    def __init__(self, replid="", nshards=0, seqs=None):
        self.replid = replid
        self.nshards = nshards
        self.seqs = {} if seqs is None else seqs    # primary shard -> last applied seq

    def note(self, shard, seq):
        if seq < 0:
            self.seqs.pop(shard, None)
        else:
            self.seqs[shard] = seq

    def state(self):
        """Plain data (for peers and JSON)."""
        return {"replid": self.replid, "nshards": self.nshards,
                "seqs": {str(s): q for s, q in self.seqs.items()}}

    @classmethod
    def from_state(cls, state):
        return cls(str(state["replid"]), int(state["nshards"]),
                   {int(s): int(q) for s, q in state["seqs"].items()})


def replay(ks, argv):
    """Apply a marks record during recovery; the wrapped argv to run, or None."""
    marks = ks.repl_marks
    if argv[0] == ORIGIN:
        ks.repl_marks = Marks(argv[1].decode(), int(argv[2]))
        return None
    if marks is None:
        marks = ks.repl_marks = Marks()
    marks.note(int(argv[1]), int(argv[2]))
    return argv[3:] or None


def applied_record(shard, seq, argv=()):
    return [APPLIED, b"%d" % shard, b"%d" % seq, *argv]


def origin_record(replid, nshards):
    return [ORIGIN, replid.encode(), b"%d" % nshards]


# -- the snapshot sidecar -------------------------------------------------------------

def sidecar_path(snapshot_path):
    return snapshot_path[:-len(".fcs")] + ".marks" if snapshot_path.endswith(".fcs") \
        else snapshot_path + ".marks"


def write_sidecar(snapshot_path, marks):
    """Store marks beside the snapshot about to be renamed to snapshot_path (or
    remove a stale sidecar when there are none)."""
    path = sidecar_path(snapshot_path)
    if marks is None:
        remove_sidecar(snapshot_path)
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(marks.state(), f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_sidecar(snapshot_path):
    """The marks saved with a snapshot, or None."""
    try:
        with open(sidecar_path(snapshot_path)) as f:
            return Marks.from_state(json.load(f))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError("bad marks file %s: %s" % (sidecar_path(snapshot_path), exc)) from None


def remove_sidecar(snapshot_path):
    try:
        os.unlink(sidecar_path(snapshot_path))
    except FileNotFoundError:
        pass
