"""A minimal raw RESP client for tests: send argv, get back one reply's exact bytes."""
import socket


def encode_command(args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = b"%d" % a
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)


class ReplyScanner:
    """Finds where one complete RESP2/RESP3 reply ends in a buffer."""

    AGGREGATE = {ord("*"): 1, ord("~"): 1, ord(">"): 1, ord("%"): 2, ord("|"): 2}
    BLOB = {ord("$"), ord("="), ord("!")}

    @classmethod
    def end(cls, buf, pos=0):
        """Index just past the reply starting at pos, or -1 if incomplete."""
        nl = buf.find(b"\r\n", pos)
        if nl < 0:
            return -1
        kind = buf[pos]
        head = buf[pos + 1:nl]
        pos = nl + 2
        if kind in cls.BLOB:
            n = int(head)
            if n < 0:
                return pos
            return pos + n + 2 if len(buf) >= pos + n + 2 else -1
        if kind in cls.AGGREGATE:
            n = int(head)
            if n < 0:
                return pos
            for _ in range(n * cls.AGGREGATE[kind]):
                pos = cls.end(buf, pos)
                if pos < 0:
                    return -1
            return pos
        return pos


class RawClient:
    def __init__(self, port, host="127.0.0.1", timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def read_reply(self):
        while True:
            if self.buf:
                end = ReplyScanner.end(self.buf)
                if end >= 0:
                    reply, self.buf = self.buf[:end], self.buf[end:]
                    return reply
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed; buffered %r" % self.buf)
            self.buf += chunk

    def call(self, *args):
        self.send(encode_command(args))
        return self.read_reply()

    def close(self):
        self.sock.close()


def run_script(port, script, proto=2):
    """Every reply of script (argv tuples) on a fresh connection, after FLUSHALL
    and, for proto 3, HELLO 3: raw bytes, for comparing servers."""
    c = RawClient(port)
    try:
        c.call("FLUSHALL")
        if proto == 3:
            c.call("HELLO", "3")
        return [c.call(*cmd) for cmd in script]
    finally:
        c.close()
