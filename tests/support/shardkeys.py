"""Keys chosen by the shard that owns them on an N-shard fastcache server.

Uses the server's own key -> slot -> shard mapping, so tests keep aiming at
the intended shards if the slot ranges ever change."""
from fastcache.engine.slots import key_slot, slot_table


def shard_of(key, nshards):
    if isinstance(key, str):
        key = key.encode()
    return slot_table(nshards)[key_slot(key)]


def keys_by_shard(nshards, per_shard=1, prefix="k"):
    """[[key, ...] for each shard]: per_shard keys "<prefix>:<n>" owned by each shard."""
    table = slot_table(nshards)
    found = [[] for _ in range(nshards)]
    n = 0
    while any(len(keys) < per_shard for keys in found):
        key = "%s:%d" % (prefix, n)
        owned = found[table[key_slot(key.encode())]]
        if len(owned) < per_shard:
            owned.append(key)
        n += 1
    return found


def one_per_shard(nshards, prefix="k"):
    """One key on each shard, in shard order."""
    return [keys[0] for keys in keys_by_shard(nshards, 1, prefix)]


def round_robin(nshards, count, prefix="k"):
    """count keys whose owners cycle through every shard: 0, 1, ..., N-1, 0, ..."""
    per_shard = -(-count // nshards)
    columns = keys_by_shard(nshards, per_shard, prefix)
    return [columns[i % nshards][i // nshards] for i in range(count)]
