"""What a handler sees of the caller: keyspace, selected db, protocol, client."""


class Context:
    __slots__ = ("ks", "db", "proto", "client", "server")

    def __init__(self, ks, dbnum=0, proto=2, client=None, server=None):
        self.ks = ks
        self.db = ks.dbs[dbnum]
        self.proto = proto
        self.client = client   # the connection, or None for a forwarded command
        self.server = server   # the worker, or None when embedded

    def select(self, dbnum):
        self.db = self.ks.dbs[dbnum]
