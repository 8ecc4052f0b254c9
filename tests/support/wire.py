"""Raw socket exchanges for protocol tests: what came back, and did the server hang up."""
import socket
import time

SENTINEL = b"*2\r\n$4\r\nECHO\r\n$8\r\nsentinel\r\n"
SENTINEL_REPLY = b"$8\r\nsentinel\r\n"


def connect(port, timeout=5.0):
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock, timeout=5.0):
    """(bytes received, True) once the peer closes; (bytes, False) after timeout seconds."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return out, False
        except ConnectionResetError:
            return out, True
        if not chunk:
            return out, True
        out += chunk
        left = deadline - time.monotonic()
        if left <= 0:
            return out, False
        sock.settimeout(left)


def read_until(sock, suffix, timeout=5.0):
    """Bytes up to and including suffix at the end of the stream; raises on close/timeout."""
    sock.settimeout(timeout)
    out = b""
    while not out.endswith(suffix):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed after %r" % out[-200:])
        out += chunk
    return out


def until_closed(port, payload, timeout=5.0, half_close=False):
    """Send payload on a fresh connection; (reply bytes, closed?) as read_until_closed."""
    sock = connect(port, timeout)
    try:
        sock.sendall(payload)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        return read_until_closed(sock, timeout)
    finally:
        sock.close()


def replies_before_sentinel(port, payload, timeout=5.0, pieces=None, pause=0.0):
    """Send payload (optionally in pieces, pausing between) then ECHO sentinel.

    Returns the bytes that came back before the sentinel's reply; raises if
    the connection closes first."""
    sock = connect(port, timeout)
    try:
        for piece in pieces if pieces is not None else [payload]:
            sock.sendall(piece)
            if pause:
                time.sleep(pause)
        sock.sendall(SENTINEL)
        data = read_until(sock, SENTINEL_REPLY, timeout)
        return data[:-len(SENTINEL_REPLY)]
    finally:
        sock.close()
