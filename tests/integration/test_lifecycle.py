"""Starting and stopping the server: signals, SHUTDOWN, a dying worker,
configuration errors and precedence, --version."""
import os
import signal
import subprocess
import sys
import time

import pytest

import fastcache
from tests.integration.conftest import make_client
from tests.support.procs import alive, child_pids, start_fastcache_argv, start_redis_argv
from tests.support.servers import ROOT, free_port
from tests.support.wire import until_closed
from tests.support.workers import one_client_per_worker


def wait_gone(pids, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if alive(p)]
        if not left:
            return []
        time.sleep(0.02)
    return [p for p in pids if alive(p)]


def exit_code(server, timeout=15.0):
    try:
        return server.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pytest.fail("server did not exit; log:\n" + server.output())


def port_closed(port):
    try:
        until_closed(port, b"PING\r\n", timeout=2)
    except ConnectionRefusedError:
        return True
    return False


# -- stopping ---------------------------------------------------------------------------


@pytest.mark.parametrize("shards", [1, 4])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_every_worker(shards, sig):
    server = start_fastcache_argv("--shards", str(shards))
    try:
        workers = child_pids(server.proc.pid)
        assert len(workers) == shards
        server.proc.send_signal(sig)
        assert exit_code(server) == 0, server.output()
        assert wait_gone(workers) == []
        assert port_closed(server.port)
    finally:
        server.stop()


@pytest.mark.parametrize("shards", [1, 4])
def test_shutdown_command_stops_everything(shards):
    server = start_fastcache_argv("--shards", str(shards))
    try:
        workers = child_pids(server.proc.pid)
        client = make_client(server.port)
        client.set("k", "v")
        client.close()
        assert until_closed(server.port, b"SHUTDOWN\r\n") == (b"", True)
        assert exit_code(server) == 0, server.output()
        assert wait_gone(workers) == []
        assert port_closed(server.port)
    finally:
        server.stop()


def test_shutdown_reply_matches_redis():
    """Bad SHUTDOWN arguments are refused the way Redis refuses them; a good one closes."""
    ours = start_fastcache_argv("--shards", "2")
    theirs = start_redis_argv()
    try:
        for payload in (b"SHUTDOWN BOGUS\r\n", b"SHUTDOWN NOSAVE SAVE\r\n"):
            expected = until_closed(theirs.port, payload + b"QUIT\r\n")
            assert until_closed(ours.port, payload + b"QUIT\r\n") == expected
        expected = until_closed(theirs.port, b"SHUTDOWN NOSAVE\r\n")
        assert until_closed(ours.port, b"SHUTDOWN NOSAVE\r\n") == expected
        assert exit_code(ours) == 0
    finally:
        ours.stop()
        theirs.stop()


def test_killed_worker_stops_the_server():
    server = start_fastcache_argv("--shards", "4")
    try:
        workers = child_pids(server.proc.pid)
        assert len(workers) == 4
        victim = workers[2]
        os.kill(victim, signal.SIGKILL)
        code = exit_code(server)
        assert code != 0
        assert wait_gone(workers) == []
        log = server.output()
        assert str(victim) in log, log
        assert port_closed(server.port)
    finally:
        server.stop()


# -- configuration errors ----------------------------------------------------------------


def run_fastcache(*args, env=None, timeout=20):
    done = subprocess.run([sys.executable, "-m", "fastcache", *args], capture_output=True,
                          timeout=timeout, env=env, cwd=ROOT)
    return done.returncode, (done.stdout + done.stderr).decode()


def config_error(*args, env=None):
    """The one line fastcache prints when it refuses to start with these args."""
    code, out = run_fastcache(*args, env=env)
    assert code != 0, out
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    return lines[0]


@pytest.mark.parametrize("args, key", [
    (("--port", "abc"), "port"),
    (("--port", "70000"), "port"),
    (("--shards", "0"), "shards"),
    (("--shards", "two"), "shards"),
    (("--foo", "1"), "foo"),
    (("--maxclients", "0"), "maxclients"),
    (("--protected-mode", "maybe"), "protected-mode"),
    (("--loglevel", "loud"), "loglevel"),
    (("--timeout",), "timeout"),
])
def test_bad_flag_is_one_line_naming_the_key(args, key, tmp_path):
    assert key in config_error("--port", str(free_port()), "--dir", str(tmp_path), *args)


@pytest.mark.parametrize("toml, key", [
    ('port = "abc"\n', "port"),
    ("shards = 0\n", "shards"),
    ("nosuchkey = 1\n", "nosuchkey"),
    ('maxclients = "lots"\n', "maxclients"),
])
def test_bad_config_file_value_is_one_line_naming_the_key(toml, key, tmp_path):
    path = tmp_path / "fastcache.toml"
    path.write_text(toml)
    assert key in config_error(str(path), "--port", str(free_port()), "--dir", str(tmp_path))


@pytest.mark.parametrize("text", ["port = \n", "[unclosed\n", "port = 1\nport = 2\n"])
def test_malformed_config_file_is_one_line_naming_the_file(text, tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text(text)
    line = config_error(str(path), "--port", str(free_port()), "--dir", str(tmp_path))
    assert "broken.toml" in line


def test_missing_config_file_is_one_line(tmp_path):
    assert "absent.toml" in config_error(str(tmp_path / "absent.toml"), "--port", str(free_port()))


def test_bad_environment_value_is_one_line_naming_the_key(tmp_path):
    env = dict(os.environ, FASTCACHE_MAXCLIENTS="many")
    assert "maxclients" in config_error("--port", str(free_port()), "--dir", str(tmp_path), env=env)


def test_busy_port_fails_cleanly(fc1):
    code, out = run_fastcache("--port", str(fc1.port), "--shards", "2")
    assert code != 0
    assert str(fc1.port) in out


# -- configuration precedence ---------------------------------------------------------


def test_flags_beat_environment_beat_file_beat_defaults(tmp_path, monkeypatch):
    path = tmp_path / "fastcache.toml"
    path.write_text("maxclients = 100\n"
                    "timeout = 10\n"
                    "hz = 20\n"
                    "tcp-keepalive = 30\n")
    monkeypatch.setenv("FASTCACHE_TIMEOUT", "21")
    monkeypatch.setenv("FASTCACHE_HZ", "31")
    monkeypatch.setenv("FASTCACHE_SLOWLOG_MAX_LEN", "64")
    server = start_fastcache_argv("--shards", "2", "--hz", "41", "--databases", "4",
                                  config_file=str(path))
    expected = {
        "maxclients": "100",              # file over default
        "timeout": "21",                  # environment over file
        "hz": "41",                       # flag over environment and file
        "slowlog-max-len": "64",          # environment, dashed key
        "tcp-keepalive": "30",            # file only
        "databases": "4",                 # flag only
        "slowlog-log-slower-than": "10000",  # default
    }
    try:
        clients = one_client_per_worker(lambda: make_client(server.port), 2)
        assert len(clients) == 2
        for client in clients.values():
            for key, value in expected.items():
                assert client.config_get(key) == {key: value}
            client.close()
    finally:
        server.stop()


# -- version ----------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--version", "-v"])
def test_version(flag):
    code, out = run_fastcache(flag)
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 1
    assert fastcache.__version__ in lines[0]
