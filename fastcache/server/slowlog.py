"""SLOWLOG: commands slower than slowlog-log-slower-than microseconds."""
import time
from collections import deque


class SlowLog:
    def __init__(self, config):
        self.config = config
        self.entries = deque()
        self.next_id = 0

    def observe(self, micros, argv, client):
        threshold = self.config["slowlog-log-slower-than"]
        if threshold < 0 or micros < threshold:
            return
        self.record(micros, argv, client)

    def record(self, micros, argv, client):
        # Like Redis: at most 32 arguments, each at most 128 bytes.
        args = []
        for i, a in enumerate(argv):
            if i == 31 and len(argv) > 32:
                args.append(b"... (%d more arguments)" % (len(argv) - 31))
                break
            if len(a) > 128:
                a = a[:128] + b"... (%d more bytes)" % (len(a) - 128)
            args.append(a)
        entry = [self.next_id, int(time.time()), micros, args,
                 client.addr.encode() if client else b"",
                 client.name if client else b""]
        self.next_id += 1
        self.entries.appendleft(entry)
        limit = self.config["slowlog-max-len"]
        while len(self.entries) > limit:
            self.entries.pop()

    def reset(self):
        self.entries.clear()
