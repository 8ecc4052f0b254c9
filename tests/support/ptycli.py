"""Drive an interactive redis-cli through a pseudo-terminal, as a person would.

TERM=dumb makes linenoise read plain lines (no hints or cursor escapes), while
stdout is still a tty, so redis-cli prints its human format: "bar", (integer) 1,
(nil), (error) ERR ..."""
import os
import pty
import re
import select
import shutil
import signal
import tempfile
import time

PROMPT = re.compile(rb"(?:^|\n)(127\.0\.0\.1:\d+(?:\[\d+\])?> )$")


class PtyRedisCli:
    def __init__(self, port, *args, timeout=10.0):
        self.timeout = timeout
        self.home = tempfile.mkdtemp(prefix="rediscli-home-")
        env = dict(os.environ, TERM="dumb", HOME=self.home, REDISCLI_HISTFILE="/dev/null")
        argv = ["redis-cli", "-p", str(port), *args]
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become redis-cli
            try:
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        self.prompt = None
        self.banner = self._read_to_prompt()

    def _read_to_prompt(self):
        out = b""
        deadline = time.monotonic() + self.timeout
        while True:
            m = PROMPT.search(out)
            if m:
                self.prompt = m.group(1).decode()
                return out[:m.start(1)]
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no redis-cli prompt; got %r" % out[-300:])
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # EIO: redis-cli exited
                    chunk = b""
                if not chunk:
                    raise EOFError("redis-cli exited; got %r" % out[-300:])
                out += chunk

    def run(self, line):
        """Type one command line; the text redis-cli printed for it (echo removed)."""
        os.write(self.fd, line.encode() + b"\n")
        out = self._read_to_prompt().decode(errors="replace").replace("\r\n", "\n")
        echo, _, rest = out.partition("\n")
        assert echo == line, "unexpected echo %r for %r" % (echo, line)
        return rest.rstrip("\n")

    def close(self):
        try:
            os.write(self.fd, b"quit\n")
        except OSError:
            pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.02)
        else:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)
        shutil.rmtree(self.home, ignore_errors=True)
