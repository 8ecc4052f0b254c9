"""INFO: the server's state in Redis's sections, fields and order.

INFO fans out: every shard worker answers with a snapshot of its own counters
(a plain dict, so it can travel between processes), and merge() adds them up
and renders the text on the worker the client talks to. Features fastcache
does not have (eviction, modules, ...) report the values Redis shows
when they are off.
"""
import hashlib
import os
import platform
import resource
import sys
import time
from collections import deque

from fastcache import REDIS_VERSION
from fastcache.engine.registry import ALL, command
from fastcache.protocol.replies import OK, Verbatim
from fastcache.replication import report
from fastcache.server.config_commands import CONFIG_ACL, current_value, listening_port
from fastcache.server.persistence_commands import info_facts, info_fields

SECTIONS = ("server", "clients", "memory", "persistence", "stats", "replication", "cpu",
            "modules", "commandstats", "errorstats", "latencystats", "cluster", "keyspace")
DEFAULT_SECTIONS = frozenset(SECTIONS) - {"commandstats", "latencystats"}
_TITLES = {"cpu": "CPU"}

# Snapshot fields that are added up across workers.
_SUMMED = ("clients", "rss", "peak", "commands", "connections", "handoffs", "rejected", "net_in",
           "net_out", "ops", "in_kbps", "out_kbps", "hits", "misses", "expired", "cpu_sys",
           "cpu_user")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_BUILD_ID = hashlib.sha1(b"fastcache").hexdigest()[:15]


def wanted_sections(args):
    """Section names to show, in Redis's order, for INFO's arguments."""
    if not args:
        return [s for s in SECTIONS if s in DEFAULT_SECTIONS]
    chosen = set()
    for arg in args:
        name = arg.decode("utf-8", "replace").lower()
        if name == "default":
            chosen |= DEFAULT_SECTIONS
        elif name in ("all", "everything"):
            chosen.update(SECTIONS)
        else:
            chosen.add(name)
    return [s for s in SECTIONS if s in chosen]


class Rates:
    """instantaneous_*: per-second rates over the last ~1.6 s, sampled every
    100 ms like Redis. Sampling starts on a worker's first INFO."""

    def __init__(self):
        self.samples = deque(maxlen=16)
        self.running = False

    def start(self, worker):
        if not self.running and worker.loop is not None:
            self.running = True
            self._sample(worker)

    def _sample(self, worker):
        s = worker.stats
        self.samples.append((time.monotonic(), s.commands, s.net_input_bytes, s.net_output_bytes))
        worker.loop.call_later(0.1, self._sample, worker)

    def reset(self):
        self.samples.clear()

    def per_second(self):
        """(ops/s, input KB/s, output KB/s)."""
        if len(self.samples) < 2:
            return 0, 0.0, 0.0
        t0, c0, i0, o0 = self.samples[0]
        t1, c1, i1, o1 = self.samples[-1]
        dt = t1 - t0
        return (max(0, round((c1 - c0) / dt)), max(0.0, (i1 - i0) / dt / 1024),
                max(0.0, (o1 - o0) / dt / 1024))


RATES = Rates()      # one worker per process, so one sampler per worker
_peak_rss = [0]


def _rss():
    try:
        with open("/proc/self/statm", "rb") as f:
            rss = int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    _peak_rss[0] = max(_peak_rss[0], rss)
    return rss


def snapshot(ctx):
    """This worker's share of INFO, as plain data."""
    ks, worker = ctx.ks, ctx.server
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rss = _rss()
    part = {
        "clients": 0, "rss": rss, "peak": _peak_rss[0], "commands": 0, "connections": 0,
        "handoffs": 0, "rejected": 0, "net_in": 0, "net_out": 0, "ops": 0, "in_kbps": 0.0,
        "out_kbps": 0.0,
        "hits": ks.hits, "misses": ks.misses, "expired": ks.expired_keys,
        "cpu_sys": usage.ru_stime, "cpu_user": usage.ru_utime, "max_qbuf": 0,
        "dbs": [(db.id, len(db.data), len(db.expires)) for db in ks.dbs if db.data],
        "started": time.time(), "pid": os.getpid(), "port": 0, "instance": str(os.getpid()),
        "hz": 10, "maxclients": 10000, "config_file": "", "shards": 1,
        "maxmemory": 0, "maxmemory_policy": "noeviction", "repl": None,
    }
    if worker is None:
        return part
    stats, config = worker.stats, worker.config
    RATES.start(worker)
    part["ops"], part["in_kbps"], part["out_kbps"] = RATES.per_second()
    part.update(
        clients=len(worker.clients), commands=stats.commands,
        connections=stats.connections_received, handoffs=stats.client_handoffs,
        rejected=stats.rejected_connections,
        net_in=stats.net_input_bytes, net_out=stats.net_output_bytes,
        max_qbuf=max((getattr(c.parser, "buffered", 0) for c in worker.clients.values()),
                     default=0),
        started=worker.started, pid=os.getppid(), instance=worker.instance,
        port=listening_port(worker), hz=config["hz"], maxclients=config["maxclients"],
        config_file=config.source or "", shards=worker.nshards,
        maxmemory=int(current_value(config, "maxmemory")),
        maxmemory_policy=current_value(config, "maxmemory-policy"),
        repl=worker.replication.info(),
    )
    return part


def human_bytes(n):
    """Redis's bytesToHuman: 1023B, 1.00K, 2.50M, ..."""
    if n < 1024:
        return "%dB" % n
    for unit in "KMGTP":
        n /= 1024
        if n < 1024 or unit == "P":
            return "%.2f%s" % (n, unit)


# -- sections: each returns its (field, value) pairs ----------------------------------

def _server(first, total, parts):
    now = time.time()
    uptime = int(now - min(p["started"] for p in parts))
    uname = platform.uname()
    return [
        ("redis_version", REDIS_VERSION), ("redis_git_sha1", "00000000"), ("redis_git_dirty", 0),
        ("redis_build_id", _BUILD_ID), ("redis_mode", "standalone"),
        ("os", "%s %s %s" % (uname.system, uname.release, uname.machine)),
        ("arch_bits", 64 if sys.maxsize > 2 ** 32 else 32),
        ("monotonic_clock", "POSIX clock_gettime"), ("multiplexing_api", "epoll"),
        ("atomicvar_api", "c11-builtin"), ("gcc_version", "0.0.0"),
        ("process_id", first["pid"]), ("process_supervised", "no"),
        ("run_id", hashlib.sha1(("run:" + first["instance"]).encode()).hexdigest()),
        ("tcp_port", first["port"]), ("server_time_usec", int(now * 1000000)),
        ("uptime_in_seconds", uptime), ("uptime_in_days", uptime // 86400),
        ("hz", first["hz"]), ("configured_hz", first["hz"]),
        ("lru_clock", int(now) & ((1 << 24) - 1)), ("executable", sys.executable),
        ("config_file", first["config_file"]), ("io_threads_active", 0),
        ("fastcache_shards", first["shards"]),
    ]


def _clients(first, total, parts):
    return [
        ("connected_clients", total["clients"]), ("cluster_connections", 0),
        ("maxclients", first["maxclients"]),
        ("client_recent_max_input_buffer", max(p["max_qbuf"] for p in parts)),
        ("client_recent_max_output_buffer", 0), ("blocked_clients", 0),
        ("tracking_clients", 0), ("clients_in_timeout_table", 0),
    ]


def _memory(first, total, parts):
    used, peak = total["rss"], max(total["peak"], total["rss"])
    system = os.sysconf("SC_PHYS_PAGES") * _PAGE
    maxmemory = first["maxmemory"]
    return [
        ("used_memory", used), ("used_memory_human", human_bytes(used)),
        ("used_memory_rss", used), ("used_memory_rss_human", human_bytes(used)),
        ("used_memory_peak", peak), ("used_memory_peak_human", human_bytes(peak)),
        ("used_memory_peak_perc", "%.2f%%" % (100.0 * used / peak if peak else 100.0)),
        ("used_memory_overhead", 0), ("used_memory_startup", 0),
        ("used_memory_dataset", used), ("used_memory_dataset_perc", "100.00%"),
        ("allocator_allocated", used), ("allocator_active", used), ("allocator_resident", used),
        ("total_system_memory", system), ("total_system_memory_human", human_bytes(system)),
        ("used_memory_lua", 0), ("used_memory_vm_eval", 0), ("used_memory_lua_human", "0B"),
        ("used_memory_scripts_eval", 0), ("number_of_cached_scripts", 0),
        ("number_of_functions", 0), ("number_of_libraries", 0),
        ("used_memory_vm_functions", 0), ("used_memory_vm_total", 0),
        ("used_memory_vm_total_human", "0B"), ("used_memory_functions", 0),
        ("used_memory_scripts", 0), ("used_memory_scripts_human", "0B"),
        ("maxmemory", maxmemory), ("maxmemory_human", human_bytes(maxmemory)),
        ("maxmemory_policy", first["maxmemory_policy"]),
        ("allocator_frag_ratio", "1.00"), ("allocator_frag_bytes", 0),
        ("allocator_rss_ratio", "1.00"), ("allocator_rss_bytes", 0),
        ("rss_overhead_ratio", "1.00"), ("rss_overhead_bytes", 0),
        ("mem_fragmentation_ratio", "1.00"), ("mem_fragmentation_bytes", 0),
        ("mem_not_counted_for_evict", 0), ("mem_replication_backlog", 0),
        ("mem_total_replication_buffers", 0), ("mem_clients_slaves", 0),
        ("mem_clients_normal", 0), ("mem_cluster_links", 0), ("mem_aof_buffer", 0),
        ("mem_allocator", "libc"), ("active_defrag_running", 0),
        ("lazyfree_pending_objects", 0), ("lazyfreed_objects", 0),
    ]


def _persistence(first, total, parts):
    return info_fields([p["persistence"] for p in parts])


_ZERO_STATS_TAIL = (
    "latest_fork_usec", "total_forks", "migrate_cached_sockets", "slave_expires_tracked_keys",
    "active_defrag_hits", "active_defrag_misses", "active_defrag_key_hits",
    "active_defrag_key_misses", "total_active_defrag_time", "current_active_defrag_time",
    "tracking_total_keys", "tracking_total_items", "tracking_total_prefixes",
    "unexpected_error_replies", "total_error_replies", "dump_payload_sanitizations",
    "total_reads_processed", "total_writes_processed", "io_threaded_reads_processed",
    "io_threaded_writes_processed", "reply_buffer_shrinks", "reply_buffer_expands",
)


def _stats(first, total, parts):
    repl = report.stats_fields(parts)
    return [
        ("total_connections_received", total["connections"]),
        ("total_commands_processed", total["commands"]),
        ("instantaneous_ops_per_sec", total["ops"]),
        ("total_net_input_bytes", total["net_in"]), ("total_net_output_bytes", total["net_out"]),
        ("total_net_repl_input_bytes", 0), ("total_net_repl_output_bytes", repl["repl_out"]),
        ("instantaneous_input_kbps", "%.2f" % total["in_kbps"]),
        ("instantaneous_output_kbps", "%.2f" % total["out_kbps"]),
        ("instantaneous_input_repl_kbps", "0.00"), ("instantaneous_output_repl_kbps", "0.00"),
        ("rejected_connections", total["rejected"]),
        ("sync_full", repl["sync_full"]), ("sync_partial_ok", repl["sync_partial_ok"]),
        ("sync_partial_err", repl["sync_partial_err"]),
        ("expired_keys", total["expired"]), ("expired_stale_perc", "0.00"),
        ("expired_time_cap_reached_count", 0), ("expire_cycle_cpu_milliseconds", 0),
        ("evicted_keys", 0), ("evicted_clients", 0), ("total_eviction_exceeded_time", 0),
        ("current_eviction_exceeded_time", 0),
        ("keyspace_hits", total["hits"]), ("keyspace_misses", total["misses"]),
        ("pubsub_channels", 0), ("pubsub_patterns", 0), ("pubsubshard_channels", 0),
    ] + [(name, 0) for name in _ZERO_STATS_TAIL] + [
        # fastcache's own: clients moved to the worker that owns their keys (handoff.py)
        ("fastcache_client_handoffs", total["handoffs"]),
    ]


def _replication(first, total, parts):
    return report.replication_fields(parts)


def _cpu(first, total, parts):
    sys_s, user_s = "%.6f" % total["cpu_sys"], "%.6f" % total["cpu_user"]
    return [
        ("used_cpu_sys", sys_s), ("used_cpu_user", user_s),
        ("used_cpu_sys_children", "0.000000"), ("used_cpu_user_children", "0.000000"),
        ("used_cpu_sys_main_thread", sys_s), ("used_cpu_user_main_thread", user_s),
    ]


def _cluster(first, total, parts):
    return [("cluster_enabled", 0)]


def _keyspace(first, total, parts):
    dbs = {}
    for part in parts:
        for dbnum, keys, expires in part["dbs"]:
            counts = dbs.setdefault(dbnum, [0, 0])
            counts[0] += keys
            counts[1] += expires
    return [("db%d" % n, "keys=%d,expires=%d,avg_ttl=0" % tuple(dbs[n])) for n in sorted(dbs)]


def _empty(first, total, parts):
    return []


_RENDER = {
    "server": _server, "clients": _clients, "memory": _memory, "persistence": _persistence,
    "stats": _stats, "replication": _replication, "cpu": _cpu, "cluster": _cluster,
    "keyspace": _keyspace,
}


def merge(parts):
    """Every worker's snapshot -> the INFO text (a verbatim string in RESP3)."""
    first = parts[0]
    total = {name: sum(p[name] for p in parts) for name in _SUMMED}
    out = []
    for name in first["sections"]:
        fields = _RENDER.get(name, _empty)(first, total, parts)
        lines = ["# %s\r\n" % _TITLES.get(name, name.capitalize())]
        lines.extend("%s:%s\r\n" % field for field in fields)
        out.append("".join(lines))
    return Verbatim("\r\n".join(out))


@command("info", -1, "loading stale", route=ALL, merge=merge, group="server",
         summary="Get information and statistics about the server", acl="@slow @dangerous",
         tips="nondeterministic_output request_policy:all_shards response_policy:special")
def info(ctx, argv):
    part = snapshot(ctx)
    part["sections"] = wanted_sections(argv[1:])
    if "persistence" in part["sections"]:
        part["persistence"] = info_facts(ctx.ks, ctx.server)
    if ctx.server is None:  # embedded: nothing to fan out to
        return merge([part])
    return part


@command("resetstat", 2, "admin noscript loading stale", parent="config", route=ALL,
         group="server", since="2.0.0", summary="Reset the stats returned by INFO", acl=CONFIG_ACL)
def config_resetstat(ctx, argv):
    ks = ctx.ks
    ks.hits = ks.misses = ks.expired_keys = 0
    if ctx.server is not None:
        ctx.server.stats.reset()
    RATES.reset()
    _peak_rss[0] = 0
    return OK
