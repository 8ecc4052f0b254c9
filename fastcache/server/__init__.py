"""The network server: supervisor, shard workers, client connections, peer links."""
