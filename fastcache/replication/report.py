"""INFO's replication figures, from every worker's Replication.info().

Redis's fields and names come first. Offsets are counted in records, not
bytes: master_repl_offset is the sum of every shard's sequence, and a replica's
offset is the sum of what it applied. fastcache's own lines follow: per-shard
sequences and lag, frame and compression counters.
"""
_NO_REPLID = "0" * 40


def _summed(parts, name):
    return sum(p[name] for p in parts)


def stats_fields(parts):
    """The replication counters Redis keeps in INFO stats."""
    repls = [p["repl"] for p in parts if p.get("repl")]
    return {"sync_full": _summed(repls, "sync_full"),
            "sync_partial_ok": _summed(repls, "sync_partial_ok"),
            "sync_partial_err": _summed(repls, "sync_partial_err"),
            "repl_out": _summed(repls, "out_bytes")}


def replication_fields(parts):
    repls = sorted((p["repl"] for p in parts if p.get("repl")), key=lambda r: r["shard"])
    if not repls:
        return [("role", "master"), ("connected_slaves", 0)]
    if repls[0]["master"] is not None:
        return _replica_fields(repls)
    return _primary_fields(repls)


def _primary_fields(repls):
    sources = [r["source"] for r in repls]
    streams = [s for r in repls for s in r["streams"]]
    seqs = [src["seq"] for src in sources]
    active = [src for src in sources if src["active"]]
    fields = [("role", "master"), ("connected_slaves", len(streams))]
    for i, (ip, port, state, offset, lag, _) in enumerate(streams):
        fields.append(("slave%d" % i, "ip=%s,port=%d,state=%s,offset=%d,lag=%d"
                       % (ip, port, state, offset, lag)))
    first = sum(src["backlog_first"] for src in active)
    histlen = sum(src["backlog_last"] - src["backlog_first"] + 1 for src in active)
    fields += [
        ("master_failover_state", "no-failover"), ("master_replid", repls[0]["replid"]),
        ("master_replid2", _NO_REPLID), ("master_repl_offset", sum(seqs)),
        ("second_repl_offset", -1), ("repl_backlog_active", 1 if active else 0),
        ("repl_backlog_size", sum(src["backlog_max"] for src in active)),
        ("repl_backlog_first_byte_offset", first if active else 0),
        ("repl_backlog_histlen", histlen),
    ]
    fields += _counters(active, repls)
    for shard, src in enumerate(sources):
        acked = [s[5][shard] for s in streams if shard < len(s[5])]
        lag = max((src["seq"] - a for a in acked), default=0)
        line = "seq=%d,lag=%d" % (src["seq"], lag)
        if src["active"]:
            line += ",backlog_first=%d,backlog_bytes=%d" % (src["backlog_first"],
                                                             src["backlog_bytes"])
        fields.append(("fastcache_repl_shard%d" % shard, line))
    return fields


def _counters(active, repls):
    raw = _summed(active, "raw_bytes")
    wire = _summed(active, "wire_bytes")
    return [
        ("fastcache_repl_frames", _summed(active, "frames")),
        ("fastcache_repl_records", _summed(active, "records")),
        ("fastcache_repl_raw_bytes", raw), ("fastcache_repl_wire_bytes", wire),
        ("fastcache_repl_compression_ratio", "%.2f" % (raw / wire if wire else 1.0)),
        ("fastcache_repl_snapshot_bytes", _summed(active, "snapshot_bytes")),
        ("fastcache_repl_full_syncs", _summed(active, "full")),
        ("fastcache_repl_partial_ok", _summed(active, "partial_ok")),
        ("fastcache_repl_dropped_slow_replicas", _summed(repls, "dropped_slow")),
    ]


def _replica_fields(repls):
    host, port = repls[0]["master"]
    link = next((r["link"] for r in repls if r["link"] is not None), None) or {
        "up": False, "last_io": -1, "syncing": 0, "read": 0, "applied": 0, "replid": "",
        "down_seconds": -1, "error": None, "shards": []}
    fields = [
        ("role", "slave"), ("master_host", host), ("master_port", port),
        ("master_link_status", "up" if link["up"] else "down"),
        ("master_last_io_seconds_ago", link["last_io"]),
        ("master_sync_in_progress", link["syncing"]),
        ("slave_read_repl_offset", link["read"]), ("slave_repl_offset", link["applied"]),
    ]
    if not link["up"]:
        fields.append(("master_link_down_since_seconds", link["down_seconds"]))
    fields += [
        ("slave_priority", 100), ("slave_read_only", 1 if repls[0]["read_only"] else 0),
        ("replica_announced", 1), ("connected_slaves", 0),
        ("master_failover_state", "no-failover"),
        ("master_replid", link["replid"] or _NO_REPLID), ("master_replid2", _NO_REPLID),
        ("master_repl_offset", link["applied"]), ("second_repl_offset", -1),
        ("repl_backlog_active", 0), ("repl_backlog_size", 0),
        ("repl_backlog_first_byte_offset", 0), ("repl_backlog_histlen", 0),
    ]
    if link["error"]:
        fields.append(("fastcache_master_link_error", link["error"]))
    fields.append(("fastcache_repl_apply_errors", _summed(repls, "apply_errors")))
    for shard, applied, seq in link["shards"]:
        fields.append(("fastcache_repl_shard%d" % shard, "applied=%d,master_seq=%d,lag=%d"
                       % (applied, seq, max(0, seq - applied))))
    return fields
