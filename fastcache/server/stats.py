"""Per-worker counters behind INFO stats (summed across workers)."""


class Stats:
    __slots__ = ("commands", "connections_received", "rejected_connections",
                 "net_input_bytes", "net_output_bytes", "started_ms", "client_handoffs")

    def __init__(self):
        self.reset()

    def reset(self):
        self.commands = 0
        self.connections_received = 0
        self.client_handoffs = 0      # connections taken over from other workers
        self.rejected_connections = 0
        self.net_input_bytes = 0
        self.net_output_bytes = 0
