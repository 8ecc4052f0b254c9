"""Request bytes -> commands (lists of bytes), sans-IO, with Redis 7.0's exact rules and errors.

The server feeds whatever a read returned and takes every command that is now complete:

    parser = RequestParser()
    for argv in parser.parse(data):      # or parser.feed(data); parser.commands()
        ...

Invalid input raises ProtocolError; its ``reply`` is the exact error Redis sends before closing
the connection, and its ``commands`` are the complete commands that preceded the bad bytes (Redis
runs those first). QueryBufferLimitExceeded (a ProtocolError with an empty reply) is raised by
feed() when the unparsed bytes pass ``max_query_buffer``: Redis then closes without a reply.

Before AUTH (authenticated False) commands() returns at most one command per call, so the
limits lifted by an AUTH apply from the very next request, as in Redis, which parses one request
at a time. Call it until it returns nothing.

Redis quirks reproduced on purpose (all checked against redis-server 7.0):
- the two bytes after a bulk, and the byte after a header's CR, are skipped unchecked;
- a NUL byte hides every later line end from Redis (it scans with strchr), so such a request
  just waits until the too-big limits trip;
- multibulk counts up to INT_MAX are accepted, counts <= 0 are empty requests.

RequestParser is the fastest implementation available: the C one from fastcache._native when it
is built, else PyRequestParser. Both are exported so tests can run each.
"""

# Redis's PROTO_INLINE_MAX_SIZE: more unparsed bytes than this without the line end a header or
# inline request is waiting for is an error.
INLINE_MAX = 64 * 1024
MULTIBULK_MAX = 2**31 - 1
UNAUTH_MULTIBULK_MAX = 10
UNAUTH_BULK_MAX = 16384
DEFAULT_MAX_BULK_LEN = 512 * 1024 * 1024
DEFAULT_MAX_QUERY_BUFFER = 1024**3

_LLONG_MIN = -(2**63)
_LLONG_MAX = 2**63 - 1


class ProtocolError(Exception):
    """The request stream is invalid; send ``reply`` and close the connection.

    ``message`` is the full error text, prefix included (like CommandError), decoded as latin-1
    so that the offending byte quoted in "expected '$', got 'X'" survives exactly in ``reply``.
    """

    def __init__(self, message, commands=None):
        super().__init__(message)
        self.message = message
        # Commands completed before the error, in order; the server runs them before replying.
        self.commands = commands if commands is not None else []

    @property
    def reply(self):
        return b"-%s\r\n" % self.message.encode("latin-1")


class QueryBufferLimitExceeded(ProtocolError):
    """More than max_query_buffer unparsed bytes: Redis logs it and closes without a reply."""

    def __init__(self, message="query buffer limit exceeded", commands=None):
        super().__init__(message, commands)

    @property
    def reply(self):
        return b""


ERR_INVALID_MULTIBULK = "ERR Protocol error: invalid multibulk length"
ERR_UNAUTH_MULTIBULK = "ERR Protocol error: unauthenticated multibulk length"
ERR_INVALID_BULK = "ERR Protocol error: invalid bulk length"
ERR_UNAUTH_BULK = "ERR Protocol error: unauthenticated bulk length"
ERR_BIG_MULTIBULK = "ERR Protocol error: too big mbulk count string"
ERR_BIG_BULK = "ERR Protocol error: too big bulk count string"
ERR_BIG_INLINE = "ERR Protocol error: too big inline request"
ERR_QUOTES = "ERR Protocol error: unbalanced quotes in request"


def expected_dollar(byte):
    # Redis turns CR/LF inside an error text into spaces.
    ch = " " if byte in (10, 13) else chr(byte)
    return "ERR Protocol error: expected '$', got '%s'" % ch


def string2ll(s):
    """Redis's strict integer syntax (no sign '+', spaces or leading zeros), or None."""
    if not s or len(s) > 20:
        return None
    digits = s[1:] if s[0] == 45 else s
    if not digits.isdigit() or (digits[0] == 48 and s != b"0"):
        return None
    v = int(s)
    return v if _LLONG_MIN <= v <= _LLONG_MAX else None


# --- inline requests: Redis's sdssplitargs ------------------------------------------------

_C_SPACE = b" \t\n\r\x0b\x0c"      # C isspace(): what may follow a closing quote, skipped between args
_TOKEN_END = b" \t\n\r"            # what ends an unquoted token
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_HEX = b"0123456789abcdefABCDEF"
_NEEDS_FULL_SPLIT = (b'"', b"'", b"\x0b", b"\x0c")


def split_args(line):
    """Split an inline request line like Redis's sdssplitargs; None on unbalanced quotes."""
    # Without quotes or VT/FF, bytes.split() splits on exactly Redis's separators.
    if not any(c in line for c in _NEEDS_FULL_SPLIT):
        return line.split()
    args = []
    n = len(line)
    i = 0
    while True:
        while i < n and line[i] in _C_SPACE:
            i += 1
        if i >= n:
            return args
        cur = bytearray()
        quote = 0
        while True:
            if i >= n:
                if quote:
                    return None
                break
            c = line[i]
            if quote:
                if c == 92 and quote == 34 and i + 3 < n and line[i + 1] == 120 \
                        and line[i + 2] in _HEX and line[i + 3] in _HEX:
                    cur.append(int(line[i + 2:i + 4], 16))
                    i += 3
                elif c == 92 and i + 1 < n and (quote == 34 or line[i + 1] == 39):
                    # '...' only knows \' ; "..." also knows \n \r \t \b \a
                    i += 1
                    cur.append(_ESCAPES.get(line[i], line[i]))
                elif c == quote:
                    if i + 1 < n and line[i + 1] not in _C_SPACE:
                        return None     # a closing quote must end the argument
                    i += 1
                    break
                else:
                    cur.append(c)
            elif c in _TOKEN_END:
                i += 1
                break
            elif c == 34 or c == 39:
                quote = c
            else:
                cur.append(c)
            i += 1
        args.append(bytes(cur))


# --- the fast path's lookup tables ----------------------------------------------------------

# Canonical "*<n>" and "$<len>" header tokens. A fully buffered array whose headers are all
# canonical and whose bulks contain no CRLF is parsed from one bytes.split() without int().
_FAST_MAX_ARGS = 1024
_FAST_MAX_BULK = 4096
_COUNT = {b"*%d" % i: i for i in range(1, _FAST_MAX_ARGS + 1)}
_COUNT_UNAUTH = {b"*%d" % i: i for i in range(1, UNAUTH_MULTIBULK_MAX + 1)}
_BULK_HEADER = [b"$%d" % i for i in range(_FAST_MAX_BULK + 1)]

_WAIT = -1


class PyRequestParser:
    """Pure-Python request parser; see the module docstring for the contract."""

    def __init__(self, max_bulk_len=DEFAULT_MAX_BULK_LEN, max_query_buffer=DEFAULT_MAX_QUERY_BUFFER):
        self.max_bulk_len = max_bulk_len
        self.max_query_buffer = max_query_buffer
        # Until AUTH succeeds a server with a password applies Redis's small request limits.
        self.authenticated = True
        self._chunks = []       # unparsed input, oldest first
        self._size = 0          # total bytes in _chunks
        self._need = 0          # parsing cannot progress before _size reaches this
        self._args = None       # arguments of a partly received multibulk
        self._left = 0          # its arguments still to come
        self._bulk = -1         # length of the bulk being received, -1 before its header
        self._error = None      # (class, message) once the stream failed: later calls raise again

    @property
    def buffered(self):
        """Unparsed bytes held (Redis's query buffer minus what the commands consumed)."""
        return self._size

    @property
    def idle(self):
        """Nothing of a next command held: no unparsed bytes, no partly received multibulk."""
        return not self._size and not self._left

    def feed(self, data):
        if self._error is not None:
            return
        if data:
            if type(data) is not bytes:
                data = bytes(data)
            self._chunks.append(data)
            self._size += len(data)
            if self._size > self.max_query_buffer:
                self._fail(QueryBufferLimitExceeded(), [])

    def parse(self, data):
        """feed(data) then commands(): the once-per-read call."""
        self.feed(data)
        return self.commands()

    def commands(self):
        if self._error is not None:
            cls, message = self._error
            raise cls(message)
        if self._size < self._need or not self._size:
            return []
        chunks = self._chunks
        buf = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        out = []
        try:
            pos = self._run(buf, out)
        except ProtocolError as exc:
            self._fail(exc, out)
        if pos >= len(buf):
            self._chunks = []
            self._size = 0
        else:
            if pos:
                buf = buf[pos:]
            self._chunks = [buf]
            self._size = len(buf)
        return out

    def _fail(self, exc, done):
        exc.commands = done
        self._error = (type(exc), exc.message)
        self._chunks = []
        self._size = 0
        self._args = None
        self._left = 0
        raise exc

    def _run(self, buf, out):
        """Parse buf into out; return where parsing stopped, with _need set for the rest.

        Canonical complete arrays go through the fast path: one bytes.split() of the buffer
        whose header tokens are checked against the canonical forms, so no int() is needed.
        Anything else (inline, odd headers, long or CRLF-holding bulks, the incomplete tail)
        takes Redis's state machine one request at a time, after which the fast path resumes
        at the matching token.
        """
        n = len(buf)
        pos = 0
        if self._left:
            pos = self._bulks(buf, 0)
            if self._left:
                return pos
            out.append(self._args)
            self._args = None
        # Before AUTH, one request at a time: AUTH lifts the limits for the next one.
        one = not self.authenticated
        tokens = None if self.max_bulk_len >= _FAST_MAX_BULK and not one else False
        while pos < n:
            if one and out:
                break
            if tokens is not False and buf[pos] == 42:
                if tokens is None:
                    tokens = (buf[pos:] if pos else buf).split(b"\r\n")
                    last = len(tokens) - 1      # tokens[last] is not followed by CRLF
                    i = 0
                    at = pos                    # byte offset of tokens[i]
                else:
                    while at < pos and i < last:
                        at += len(tokens[i]) + 2
                        i += 1
                    if at != pos:               # the slow path ended inside a token
                        tokens = False
                if tokens:
                    first = i
                    i = _fast_arrays(tokens, i, last, out,
                                     _COUNT if self.authenticated else _COUNT_UNAUTH)
                    if i != first:
                        # Measure the shorter side: usually just the unfinished tail.
                        if last - i < i - first:
                            at = n - sum(map(len, tokens[i:])) - 2 * (last - i)
                        else:
                            at += sum(map(len, tokens[first:i])) + 2 * (i - first)
                        pos = at
                        if pos >= n:
                            break
            start = pos
            if buf[pos] == 42:
                pos = self._multibulk_header(buf, pos)
                if pos == _WAIT:
                    self._need = n - start + 1
                    return start
                if self._left:
                    pos = self._bulks(buf, pos)
                    if self._left:
                        return pos
                    out.append(self._args)
                    self._args = None
            else:
                pos = self._inline(buf, pos, out)
                if pos == _WAIT:
                    self._need = n - start + 1
                    return start
        self._need = 0
        return pos

    def _multibulk_header(self, buf, pos):
        n = len(buf)
        cr = buf.find(b"\r", pos)
        if cr < 0 or cr + 1 >= n:
            return _header_wait(buf, pos, cr, ERR_BIG_MULTIBULK)
        count = string2ll(buf[pos + 1:cr])
        if count is None or count > MULTIBULK_MAX:
            if buf.find(b"\0", pos, cr) >= 0:
                return _header_wait(buf, pos, -1, ERR_BIG_MULTIBULK)
            raise ProtocolError(ERR_INVALID_MULTIBULK)
        if count > UNAUTH_MULTIBULK_MAX and not self.authenticated:
            raise ProtocolError(ERR_UNAUTH_MULTIBULK)
        if count > 0:
            self._left = count
            self._args = []
            self._bulk = -1
        return cr + 2

    def _bulks(self, buf, pos):
        """Read the current multibulk's arguments; return the position to resume at."""
        n = len(buf)
        args = self._args
        while self._left:
            bulk = self._bulk
            if bulk < 0:
                bulk, cr = self._bulk_header(buf, pos)
                if bulk == _WAIT:
                    self._need = n - pos + 1
                    return pos
                pos = cr + 2
                self._bulk = bulk
            if n - pos < bulk + 2:
                # Wait for the rest without joining every read into one growing buffer.
                self._need = bulk + 2
                return pos
            args.append(buf[pos:pos + bulk])
            pos += bulk + 2
            self._bulk = -1
            self._left -= 1
        return pos

    def _bulk_header(self, buf, pos):
        """(length declared by the "$<len>" line at pos, index of its CR), or (_WAIT, -1)."""
        cr = buf.find(b"\r", pos)
        if cr < 0 or cr + 1 >= len(buf):
            return _header_wait(buf, pos, cr, ERR_BIG_BULK), -1
        bulk = string2ll(buf[pos + 1:cr]) if buf[pos] == 36 else None
        if bulk is None or bulk < 0 or bulk > self.max_bulk_len:
            if buf.find(b"\0", pos, cr) >= 0:
                return _header_wait(buf, pos, -1, ERR_BIG_BULK), -1
            if buf[pos] != 36:
                raise ProtocolError(expected_dollar(buf[pos]))
            raise ProtocolError(ERR_INVALID_BULK)
        if bulk > UNAUTH_BULK_MAX and not self.authenticated:
            raise ProtocolError(ERR_UNAUTH_BULK)
        return bulk, cr

    def _inline(self, buf, pos, out):
        nl = buf.find(b"\n", pos)
        if nl >= 0 and buf.find(b"\0", pos, nl) >= 0:
            nl = -1
        if nl < 0:
            if len(buf) - pos > INLINE_MAX:
                raise ProtocolError(ERR_BIG_INLINE)
            return _WAIT
        end = nl - 1 if nl > pos and buf[nl - 1] == 13 else nl
        argv = split_args(buf[pos:end])
        if argv is None:
            raise ProtocolError(ERR_QUOTES)
        if argv:
            out.append(argv)
        return nl + 1


def _fast_arrays(tokens, i, last, out, counts):
    """Append the complete canonical arrays starting at tokens[i]; return the index after them."""
    headers = _BULK_HEADER
    append = out.append
    try:
        while i < last:
            argc = counts.get(tokens[i])
            if argc is None:
                break
            end = i + 2 * argc
            if end >= last:
                break
            # Unrolled for the common shapes (GET, SET): a bulk is canonical when its header
            # token is exactly "$<its length>" (a CRLF inside it shortens the token).
            if argc == 2:
                a = tokens[i + 2]
                b = tokens[i + 4]
                if headers[len(a)] != tokens[i + 1] or headers[len(b)] != tokens[i + 3]:
                    break
                append([a, b])
            elif argc == 3:
                a = tokens[i + 2]
                b = tokens[i + 4]
                c = tokens[i + 6]
                if headers[len(a)] != tokens[i + 1] or headers[len(b)] != tokens[i + 3] \
                        or headers[len(c)] != tokens[i + 5]:
                    break
                append([a, b, c])
            else:
                j = i + 1
                while j < end:
                    if headers[len(tokens[j + 1])] != tokens[j]:
                        return i
                    j += 2
                append(tokens[i + 2:end + 1:2])
            i = end + 1
    except IndexError:          # a bulk longer than the header table: the slow path's
        pass
    return i


def _header_wait(buf, pos, cr, too_big):
    """A header line is not complete yet: wait, unless Redis's 64KB limit is passed.

    cr is where the line's CR is (or -1): a CR that is the last byte still needs its LF and
    does not count as missing unless a NUL hides it from Redis's strchr.
    """
    if cr < 0 or buf.find(b"\0", pos, cr) >= 0:
        if len(buf) - pos > INLINE_MAX:
            raise ProtocolError(too_big)
    return _WAIT


try:
    from fastcache._native import RequestParser as NativeRequestParser
except ImportError:         # no compiler at install time: the pure-Python parser serves
    NativeRequestParser = None

RequestParser = NativeRequestParser or PyRequestParser
