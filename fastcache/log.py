"""Redis-style log lines: 'pid:role dd Mon yyyy hh:mm:ss.mmm * message'."""
import os
import sys
import time

_LEVELS = {"debug": 0, "verbose": 1, "notice": 2, "warning": 3, "nothing": 4}
_MARKS = {0: ".", 1: "-", 2: "*", 3: "#"}
_state = {"level": 2, "role": "M", "file": None}


def configure(config, role="M"):
    _state["level"] = _LEVELS[config["loglevel"]]
    _state["role"] = role
    path = config["logfile"]
    _state["file"] = open(path, "a", buffering=1) if path else None


def _emit(level, message):
    if level < _state["level"]:
        return
    now = time.time()
    stamp = time.strftime("%d %b %Y %H:%M:%S", time.localtime(now))
    line = "%d:%s %s.%03d %s %s\n" % (os.getpid(), _state["role"], stamp,
                                      int(now * 1000) % 1000, _MARKS[level], message)
    out = _state["file"] or sys.stdout
    out.write(line)
    out.flush()


def debug(message):
    _emit(0, message)


def verbose(message):
    _emit(1, message)


def info(message):
    _emit(2, message)


def warning(message):
    _emit(3, message)
