# TEMPORARY until protocol/parser.py lands: RESP arrays only, via hiredis.
import hiredis


class ProtocolError(Exception):
    pass


class RequestParser:
    def __init__(self, max_bulk_len=0, max_query_buffer=0):
        self.r = hiredis.Reader()
        self.authenticated = True

    def feed(self, data):
        self.r.feed(data)

    def commands(self):
        out = []
        while True:
            try:
                c = self.r.gets()
            except hiredis.ProtocolError as e:
                raise ProtocolError(str(e))
            if c is False:
                return out
            out.append(c)
