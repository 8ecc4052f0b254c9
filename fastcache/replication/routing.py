"""Which replica shards a primary shard's records go to.

Primary and replica may run different shard counts, so each side has its own
slot table (slot -> shard, by range). A primary shard s covers a range of
slots; the replica shards owning any of them are s's targets. When s maps
into one replica shard (equal counts, or a replica count dividing the
primary's), its frames go there whole. Otherwise each record goes where its
keys live, multi-key records split by owner like a client's, and a record
that cannot be split across shards (RENAME, SMOVE, ...) runs on copies of its
keys (server/crossshard.py).
"""
from fastcache.engine.errors import CommandError
from fastcache.engine.records import PUT
from fastcache.engine.registry import resolve
from fastcache.engine.slots import key_slot, slot_table
from fastcache.persistence import codec
from fastcache.server import fanout


def slot_range(table, shard):
    """(first, last) slot of shard in table (shards own contiguous ranges)."""
    first = table.index(shard)
    return first, len(table) - 1 - table[::-1].index(shard)


class Layout:
    """The primary's shard count against this replica's slot table."""

    def __init__(self, primary_shards, replica_table):
        self.primary_shards = primary_shards
        self.primary_table = slot_table(primary_shards)
        self.replica_table = replica_table
        self.targets = []
        for s in range(primary_shards):
            first, last = slot_range(self.primary_table, s)
            self.targets.append(sorted(set(replica_table[first:last + 1])))
        # s -> its one replica shard, or None when it spans several
        self.single = [t[0] if len(t) == 1 else None for t in self.targets]

    def owns(self, primary_shard):
        """A predicate: does key belong to primary_shard?"""
        table = self.primary_table
        return lambda key: table[key_slot(key)] == primary_shard

    def inside(self, replica_shard, primary_shard):
        """Whether every slot of replica_shard belongs to primary_shard."""
        first, last = slot_range(self.replica_table, replica_shard)
        return self.primary_table[first] == primary_shard == self.primary_table[last]

    # -- records of a primary shard that spans replica shards --------------------------

    def split_records(self, primary_shard, records):
        """records of primary_shard cut into steps, in order: ({replica shard:
        [(seq, db, argv)]}, None) for records that go to one shard or split, and
        (None, (seq, db, argv, {replica shard: keys})) for one that must run
        across shards (the records after it wait for it)."""
        owner = self.replica_table
        targets = self.targets[primary_shard]
        steps = []
        parts = {}
        for seq, dbid, argv in records:
            if argv[0] == PUT:
                parts.setdefault(owner[key_slot(argv[1])], []).append((seq, dbid, argv))
                continue
            try:
                cmd = resolve(argv)
            except CommandError:
                cmd = None
            positions = cmd.key_indexes(argv) if cmd is not None else []
            if not positions:       # keyless (FLUSHALL, ...): each target keeps its share
                for shard in targets:
                    parts.setdefault(shard, []).append((seq, dbid, argv))
                continue
            groups = {}
            for p in positions:
                groups.setdefault(owner[key_slot(argv[p])], []).append(p)
            if len(groups) == 1:
                parts.setdefault(next(iter(groups)), []).append((seq, dbid, argv))
            elif cmd.split is not None and fanout.well_formed_split(cmd, argv):
                for shard, sub in fanout.plan_split(cmd, argv, groups)[0]:
                    parts.setdefault(shard, []).append((seq, dbid, sub))
            else:
                if parts:
                    steps.append((parts, None))
                    parts = {}
                keys = {shard: {argv[p] for p in ps} for shard, ps in groups.items()}
                steps.append((None, (seq, dbid, argv, keys)))
        if parts or not steps:
            steps.append((parts, None))
        return steps

    def split_chunk(self, blob):
        """A snapshot chunk of a spanning primary shard, cut per replica shard:
        {replica shard: packed chunk}."""
        chunk = codec.unpack(blob)
        dbid = codec.chunk_db(chunk)
        owner = self.replica_table
        pieces = {}
        for part, mapping in enumerate(chunk[1:], 1):
            for key, value in mapping.items():
                piece = pieces.get(owner[key_slot(key)])
                if piece is None:
                    piece = pieces[owner[key_slot(key)]] = (dbid, {}, {}, {})
                piece[part][key] = value
        return {shard: codec.pack(piece) for shard, piece in pieces.items()}
