"""Admission checks for new connections: maxclients and protected mode."""
import ipaddress

MAX_CLIENTS = b"-ERR max number of clients reached\r\n"
DENIED = (
    b"-DENIED Redis is running in protected mode because protected mode is enabled and no "
    b"password is set for the default user. In this mode connections are only accepted from the "
    b"loopback interface. If you want to connect from external computers to Redis you may adopt "
    b"one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG "
    b"SET protected-mode no' from the loopback interface by connecting to Redis from the same host "
    b"the server is running, however MAKE SURE Redis is not publicly accessible from internet if "
    b"you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just "
    b"disable the protected mode by editing the Redis configuration file, and setting the "
    b"protected mode option to 'no', and then restarting the server. 3) If you started the server "
    b"manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an "
    b"authentication password for the default user. NOTE: You only need to do one of the above "
    b"things in order for the server to start accepting connections from the outside.\r\n"
)


def format_addr(sockaddr):
    if not sockaddr:
        return "?:0"
    host, port = sockaddr[0], sockaddr[1]
    return "%s:%d" % (host, port)


def is_loopback(sockaddr):
    if not sockaddr:
        return True  # Unix sockets are local
    try:
        addr = ipaddress.ip_address(sockaddr[0])
    except ValueError:
        return False
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def refuse_reason(worker, peer):
    """The error to send before closing a new connection, or None to admit it."""
    config = worker.config
    if worker.client_count() >= config["maxclients"]:
        return MAX_CLIENTS
    if config["protected-mode"] and not config["requirepass"] and not is_loopback(peer):
        return DENIED
    return None
