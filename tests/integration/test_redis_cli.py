"""redis-cli against fastcache: interactive through a pseudo-terminal, --pipe,
--scan, -r, -n and -a. Where the output is deterministic it must match what
the same redis-cli prints against the reference redis-server."""
import subprocess

import pytest

from tests.integration.conftest import PASSWORD, make_client
from tests.support.ptycli import PtyRedisCli
from tests.support.resp import encode_command


def cli(port, *args, stdin=None):
    """redis-cli's (returncode, stdout, stderr) as text, stdout not a tty."""
    done = subprocess.run(["redis-cli", "-p", str(port), *args], stdin=stdin,
                          capture_output=True, timeout=60)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


@pytest.fixture
def flushed(fc):
    c = make_client(fc.port)
    c.flushall()
    c.close()
    return fc


# -- interactive -------------------------------------------------------------

SESSION = [
    ("SET foo bar", "OK"),
    ("GET foo", '"bar"'),
    ("GET nope", "(nil)"),
    ("EXISTS foo nope foo", "(integer) 2"),
    ("INCR foo", "(error) ERR value is not an integer or out of range"),
    ("INCR counter", "(integer) 1"),
    ("MSET a 1 b 2", "OK"),
    ("MGET a b nope", '1) "1"\n2) "2"\n3) (nil)'),
    ('SET "with space" "x y"', "OK"),
    ('GET "with space"', '"x y"'),
    ("SET k v EX 0", "(error) ERR invalid expire time in 'set' command"),
    ("GET", "(error) ERR wrong number of arguments for 'get' command"),
    ("NOSUCHCMD a", "(error) ERR unknown command 'NOSUCHCMD', with args beginning with: 'a' "),
    ("TTL foo", "(integer) -1"),
    ("DEL foo a b", "(integer) 3"),
    ("TYPE counter", "string"),
    ("ECHO hello", '"hello"'),
    ("PING", "PONG"),
]


def run_session(port, lines):
    session = PtyRedisCli(port)
    try:
        return [session.run(line) for line in lines]
    finally:
        session.close()


def test_interactive_session(flushed):
    outputs = run_session(flushed.port, [line for line, _ in SESSION])
    assert outputs == [expected for _, expected in SESSION]


def test_interactive_session_matches_redis(flushed, redis_ref):
    make_client(redis_ref.port).flushall()
    lines = [line for line, _ in SESSION] + ["HELLO 3", "MGET a b", "SET x 1", "INCRBYFLOAT x 1.5"]
    hello_free = [i for i, line in enumerate(lines) if line != "HELLO 3"]
    ours = run_session(flushed.port, lines)
    theirs = run_session(redis_ref.port, lines)
    # HELLO shows the client id, which legitimately differs
    assert [ours[i] for i in hello_free] == [theirs[i] for i in hello_free]


def test_interactive_select_changes_prompt(flushed):
    session = PtyRedisCli(flushed.port)
    try:
        assert session.prompt == "127.0.0.1:%d> " % flushed.port
        assert session.run("SET zero 0") == "OK"
        assert session.run("SELECT 3") == "OK"
        assert session.prompt == "127.0.0.1:%d[3]> " % flushed.port
        assert session.run("GET zero") == "(nil)"
        assert session.run("SET three 3") == "OK"
        assert session.run("DBSIZE") == "(integer) 1"
        assert session.run("SELECT 99") == "(error) ERR DB index is out of range"
        assert session.prompt == "127.0.0.1:%d[3]> " % flushed.port
        assert session.run("SELECT 0") == "OK"
        assert session.prompt == "127.0.0.1:%d> " % flushed.port
        assert session.run("GET zero") == '"0"'
    finally:
        session.close()


# -- --pipe, --scan, -r, -n --------------------------------------------------------


def test_pipe_mass_insertion(flushed, tmp_path):
    path = tmp_path / "mass.resp"
    with open(path, "wb") as f:
        for start in range(0, 100_000, 10_000):
            f.write(b"".join(encode_command(("SET", "k:%d" % i, "v%d" % i))
                             for i in range(start, start + 10_000)))
    with open(path, "rb") as f:
        code, out, err = cli(flushed.port, "--pipe", stdin=f)
    assert code == 0, err
    assert "errors: 0, replies: 100000" in out
    assert cli(flushed.port, "DBSIZE")[1] == "100000\n"
    assert cli(flushed.port, "GET", "k:99999")[1] == "v99999\n"


def test_pipe_counts_errors(flushed, tmp_path):
    path = tmp_path / "errs.resp"
    path.write_bytes(encode_command(("SET", "a", "1")) + encode_command(("INCR", "a"))
                     + encode_command(("GET",)) + encode_command(("NOPE",))
                     + encode_command(("SET", "b", "x")) + encode_command(("INCR", "b")))
    with open(path, "rb") as f:
        code, out, err = cli(flushed.port, "--pipe", stdin=f)
    assert "errors: 3, replies: 6" in out


def test_scan_pattern_returns_every_key(fc4):
    client = make_client(fc4.port)
    try:
        client.flushall()
        wanted = {"k:%d" % i for i in range(5000)}
        pipe = client.pipeline(transaction=False)
        for key in wanted:
            pipe.set(key, "1")
        for i in range(300):
            pipe.set("other:%d" % i, "1")
        pipe.execute()
        code, out, err = cli(fc4.port, "--scan", "--pattern", "k:*")
        assert code == 0, err
        assert set(out.split()) == wanted
        code, out, err = cli(fc4.port, "--scan", "--pattern", "other:1*")
        assert set(out.split()) == {"other:%d" % i for i in range(300) if str(i).startswith("1")}
        code, out, err = cli(fc4.port, "--scan")
        assert set(out.split()) == wanted | {"other:%d" % i for i in range(300)}
    finally:
        client.close()


def test_repeat_incr(flushed):
    code, out, err = cli(flushed.port, "-r", "5", "INCR", "c")
    assert (code, out) == (0, "1\n2\n3\n4\n5\n"), err
    assert cli(flushed.port, "GET", "c")[1] == "5\n"


def test_db_flag(flushed):
    assert cli(flushed.port, "-n", "3", "SET", "k", "in3")[1] == "OK\n"
    assert cli(flushed.port, "-n", "3", "GET", "k")[1] == "in3\n"
    assert cli(flushed.port, "GET", "k")[1] == "\n"
    db3 = make_client(flushed.port, db=3)
    try:
        assert db3.get("k") == "in3"
    finally:
        db3.close()
    session = PtyRedisCli(flushed.port, "-n", "3")
    try:
        assert session.prompt == "127.0.0.1:%d[3]> " % flushed.port
        assert session.run("GET k") == '"in3"'
    finally:
        session.close()


@pytest.mark.parametrize("args", [
    ("GET", "nokey"),
    ("SET", "s", "hello"),
    ("INCR", "s"),
    ("INCR", "s", "x"),
    ("MGET", "s", "nokey"),
    ("--no-raw", "MGET", "s", "nokey"),
    ("--no-raw", "INCR", "n"),
    ("EXPIRE", "s", "100"),
    ("--no-raw", "TTL", "s"),
    ("-3", "GET", "s"),
    ("-3", "--no-raw", "MGET", "s", "nokey"),
    ("UNKNOWNCMD",),
])
def test_one_shot_output_matches_redis(flushed, redis_ref, args):
    make_client(redis_ref.port).flushall()
    for port in (flushed.port, redis_ref.port):
        cli(port, "SET", "s", "hello")
    assert cli(flushed.port, *args) == cli(redis_ref.port, *args)


# -- -a against --requirepass --------------------------------------------------


def test_password_flag(auth_pair):
    ours, _ = auth_pair
    assert cli(ours.port, "-a", PASSWORD, "PING")[1] == "PONG\n"
    assert cli(ours.port, "-a", PASSWORD, "SET", "k", "v")[1] == "OK\n"
    assert cli(ours.port, "-a", PASSWORD, "GET", "k")[1] == "v\n"
    code, out, err = cli(ours.port, "PING")
    assert "NOAUTH Authentication required." in out


@pytest.mark.parametrize("args", [
    ("-a", PASSWORD, "PING"),
    ("PING",),
    ("-a", "wrong", "PING"),
    ("--user", "default", "--pass", PASSWORD, "PING"),
    ("--user", "nobody", "--pass", PASSWORD, "PING"),
    ("-a", PASSWORD, "AUTH", PASSWORD),
    ("AUTH", "wrong"),
])
def test_password_output_matches_redis(auth_pair, args):
    ours, theirs = auth_pair
    assert cli(ours.port, *args) == cli(theirs.port, *args)
