"""Server processes with a custom command line, and their worker processes."""
import os
import sys
import tempfile

from tests.support.servers import checkout_env, ServerProcess, free_port


def start_fastcache_argv(*args, password=None, config_file=None):
    """fastcache with config_file (if any) first, as redis-server takes it, then the flags."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="fastcache-")
    argv = [sys.executable, "-m", "fastcache"]
    if config_file is not None:
        argv.append(config_file)
    argv += ["--port", str(port), "--dir", workdir, *args]
    return ServerProcess(argv, port, workdir, password=password, env=checkout_env())


def start_redis_argv(*args, password=None):
    """The reference redis-server with extra args (start_redis cannot AUTH its readiness probe)."""
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="redis-ref-")
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", workdir, *args]
    return ServerProcess(argv, port, workdir, password=password)


def _stat(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: split after it.
    fields = data[data.rindex(b")") + 2:].split()
    return fields[0].decode(), int(fields[1])  # state, ppid


def child_pids(pid):
    """Live (non-zombie) processes whose parent is pid."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None and st[1] == pid and st[0] != "Z":
                found.append(int(name))
    return sorted(found)


def alive(pid):
    """True while pid exists and is not a zombie."""
    st = _stat(pid)
    return st is not None and st[0] != "Z"
