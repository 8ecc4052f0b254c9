"""Admission checks: protected mode and maxclients (decided per new connection).

A real non-loopback client cannot be used here (tests only talk to loopback),
so the decision function is checked directly with the peer addresses a
listening socket would report."""
from fastcache.config import Config
from fastcache.server import security


class FakeWorker:
    def __init__(self, clients=0, **config):
        self.config = Config({k.replace("_", "-"): v for k, v in config.items()})
        self.clients = clients

    def client_count(self):
        return self.clients


def test_loopback_clients_are_admitted_in_protected_mode():
    w = FakeWorker()
    for peer in [("127.0.0.1", 5000), ("127.9.9.9", 1), ("::1", 5000, 0, 0),
                 ("::ffff:127.0.0.1", 5000, 0, 0), None]:
        assert security.refuse_reason(w, peer) is None, peer


def test_remote_clients_get_denied_without_a_password():
    w = FakeWorker()
    for peer in [("10.1.2.3", 5000), ("192.168.0.7", 1), ("2001:db8::1", 5000, 0, 0),
                 ("::ffff:10.0.0.1", 1, 0, 0)]:
        reply = security.refuse_reason(w, peer)
        assert reply.startswith(b"-DENIED Redis is running in protected mode"), peer
        assert reply.endswith(b"\r\n") and reply.count(b"\r\n") == 1


def test_password_or_protected_mode_off_admits_remote_clients():
    assert security.refuse_reason(FakeWorker(requirepass="s3cret"), ("10.1.2.3", 1)) is None
    assert security.refuse_reason(FakeWorker(protected_mode=False), ("10.1.2.3", 1)) is None


def test_maxclients_counts_every_worker():
    w = FakeWorker(clients=3, maxclients=3)
    assert security.refuse_reason(w, ("127.0.0.1", 1)) == b"-ERR max number of clients reached\r\n"
    w.clients = 2
    assert security.refuse_reason(w, ("127.0.0.1", 1)) is None


def test_denied_text_is_redis_7_0s():
    import shutil
    binary = shutil.which("redis-server")
    if binary is None:
        return
    data = open(binary, "rb").read()
    assert security.DENIED[1:-2] in data
