"""Output that must not overtake its own records to disk (appendfsync always).

After a failed WAL write under appendfsync always, a client connection that
ran commands whose records are not on disk yet holds its output (in order)
until the disk takes them: an acknowledged write is a durable one. Everyone
else goes on: reads, and writes refused with MISCONF. Peer links hold such
replies one by one (peers.PeerServer)."""


class DiskGate:
    """Mixed into client connections (they have .worker and .transport)."""

    log_gen = -1     # the newest journal generation this sender's commands may have joined
    held = None      # output waiting for the disk, or None

    def note_records(self):
        journal = self.worker.ks.journal
        if journal is not None and journal.entries:
            self.log_gen = journal.generation

    def gate(self, data):
        """True if data may be written now; otherwise it waits for release_held()."""
        if self.held is not None:
            self.held.append(data)
            return False
        worker = self.worker
        if worker.ks.journal is None:      # nothing is recorded: nothing to wait for
            return True
        worker.flush_records()
        if worker.must_hold(self.log_gen):
            self.held = [data]
            worker.hold(self)
            return False
        return True

    def release_held(self):
        held, self.held = self.held, None
        if held and self.transport is not None:
            self.transport.write(b"".join(held))
