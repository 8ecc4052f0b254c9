"""Replication: a primary streams each shard's mutation records to its replicas.

The primary (every worker, for its own shard)
-------------------------------------------
- A ReplicationSource per worker (primary.py) takes every record of its shard
  from Durability.flush (its ``sink``), cuts them into frames with a Batcher
  (frames.py, batcher.py) and keeps the newest in a bounded Backlog
  (backlog.py). The journal runs while a replica is attached or appendonly is
  on: the first replica turns it on (the WAL stays off then). Frames leave at
  repl-batch-max-records / -bytes, and a loop timer takes the journal's
  records every repl-batch-max-delay-us and ships them (no per-reply work on
  the hot path); the journal's entries go to the C encoder as they are (no
  tuple per record). A tick that finds nothing parks the timer: the next
  records then go out before the reply that follows them and restart it, so
  an idle primary does not wake every max-delay. With ``repl-send-policy
  immediate`` (or a zero delay) the records are taken and shipped before
  every reply, one frame per loop pass.
- The replication ID (40 hex characters) is new at every start, made by the
  supervisor before it forks so all workers share it: a primary restarted
  from disk may have lost writes its replicas hold, so they copy it afresh.
  REPLICAOF NO ONE also starts a new one.
- Handshake (RESP, on any worker, SO_REUSEPORT picks): the replica sends AUTH
  <masterauth> if set, REPLCONF listening-port <port>, and
  ``FCSYNC <replid or ?> <nshards or 0> <w_0> ... <w_n-1>``. The accepting
  worker answers ``+FCSTREAM <replid> <nshards>`` and the connection becomes a
  binary stream of frames of every primary shard (frames carry their shard).
  For each shard s the acceptor subscribes, locally or with a peer request
  that stays open (PeerClient.subscribe), and the owner pushes frames. A
  replica that asks with ``DIRECT <its shard count>`` gets the shards that map
  into one replica shard on direct links instead (direct.py): the replica
  worker that applies shard s connects, the primary hands that socket to
  worker s, and the frames cross no peer link on either side.
- The owner decides per shard: the replid matches and the backlog still holds
  everything after w_s -> partial (the backlog frames, then live ones); else
  full: SNAPSHOT_CHUNK frames of its whole keyspace at its current sequence,
  SNAPSHOT_END, then live frames. The snapshot is made in-process, so a large
  shard holds up its worker while it is encoded; producing it from a fork (as
  BGSAVE does) is future work. INFO stats counts per replica link:
  sync_full, sync_partial_ok, and sync_partial_err when a partial was asked
  for and refused.
- Slow replicas: the acceptor drops the connection once its write buffer
  passes the replica class of client-output-buffer-limit (hard, or soft for
  its seconds), counts it, and the owners unsubscribe. The primary never waits
  for a replica nor buffers without bound. repl-max-replicas caps the links.
- Acknowledgements: the replica sends ``REPLCONF ACK <s> <seq>`` on the same
  socket every 100 ms, and within 10 ms of applying frames (one write for
  all of them). WAIT ships every shard's records followed by a heartbeat,
  which a replica acknowledges as soon as it has applied what came before,
  takes each shard's sequence, and counts the replicas that acknowledged all
  of them, until enough have or the timeout passes.

The replica (replica.py on worker 0, replica_shard.py on every worker)
----------------------------------------------------------------------
- ``replicaof <host> <port>`` in the config, or REPLICAOF/SLAVEOF at run time
  (every worker switches role; worker 0 runs the link). Client writes get
  ``-READONLY You can't write against a read only replica.`` (the native fast
  path is off on a replica, as it skips that check). REPLICAOF NO ONE keeps
  the data and starts a new replication ID.
- The link connects with backoff (100 ms doubling to 5 s), handshakes with its
  watermarks, decodes frames and routes them (routing.py): a primary shard
  whose slots fall in one replica shard goes there whole; otherwise records go
  where their keys live, multi-key ones split by owner, and one that cannot be
  split runs on copies of its keys under the shards' locks (server/crossshard.py)
  while the records after it wait.
- Each replica shard r applies record q of primary shard s only if
  q > mark[r][s], through Worker.run_command (READONLY lifted), and journals
  it wrapped as [FC.APPLIED, s, q, *argv], so its WAL brings back data and
  marks together; its snapshots carry the marks in a ``snap-<seq>.marks``
  sidecar (persistence/marks.py). The resume watermark of s is the lowest mark
  among the replica shards s maps to: exactly once per shard, even after a
  replica crash under appendfsync everysec.
- A full copy of s first removes every key the replica holds that s owns
  (under the primary's slot table), then loads the chunks; the mark of s is
  void meanwhile, so a crash half way asks for a new full copy.
- Per-key order holds: one primary shard's records are applied in order, and
  a key lives on one replica shard.

Known limits: a record run across replica shards (only when the replica's
slot ranges cut through a primary shard's) is not exactly-once if the replica
crashes while it runs; a replica expires keys by its own clock, so a write
that reaches it within the replication lag of its key's expiry can differ;
transactions are applied record by record (a replica reader may see part of
one), and a full copy replaces a shard's keys while readers look on; a
replica restarted with another shard count (its data redistributed) copies
its primary afresh; no chained replicas; the lag and offset figures count
records, not bytes.
"""
