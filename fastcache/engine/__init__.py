"""The shard engine: keyspace, command table and command handlers. No I/O."""
