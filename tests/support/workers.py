"""Connections landing on each worker of a multi-worker server.

The kernel spreads connections over the workers' SO_REUSEPORT sockets; a
worker hands out client ids interleaved by its index (id % shards == index),
so CLIENT ID tells which worker a connection reached."""


def one_client_per_worker(connect, nshards, attempts=64):
    """{worker index: client} with a client on every worker, made by connect().

    connect() returns a redis-py client bound to one connection. Gives up after
    `attempts` connections and returns what it found (the caller asserts)."""
    found = {}
    spare = []
    for _ in range(attempts):
        if len(found) == nshards:
            break
        client = connect()
        index = client.client_id() % nshards
        if index in found:
            spare.append(client)
        else:
            found[index] = client
    for client in spare:
        client.close()
    return found
