"""Forwarded commands and their replies as flat bytes, for the peer links.

A pass's forwards to one shard travel as one blob, and its replies come back as one:

    commands: per command a u32 argument count, then per argument a u32 length and its bytes
    replies:  per reply a u32 length and its encoded bytes

(u32 little endian.) ``assemble(out, packs)`` builds a pass's output from its list ``out`` of
encoded replies (bytes) and placeholders (the int number of the shard a command went to): each
placeholder takes the next reply from ``packs[shard]``.

The C twins in fastcache._native are used when built; the py_* versions define the behaviour.
"""
import struct

_U32 = struct.Struct("<I")


def py_pack_commands(argvs):
    parts = []
    for argv in argvs:
        parts.append(_U32.pack(len(argv)))
        for arg in argv:
            parts.append(_U32.pack(len(arg)))
            parts.append(arg)
    return b"".join(parts)


def _take(blob, pos):
    """The bytes item at pos, and the position after it."""
    if len(blob) - pos < 4:
        raise ValueError("truncated forward payload")
    (size,) = _U32.unpack_from(blob, pos)
    pos += 4
    if len(blob) - pos < size:
        raise ValueError("truncated forward payload")
    return blob[pos:pos + size], pos + size


def py_unpack_commands(blob):
    argvs = []
    pos = 0
    while pos < len(blob):
        if len(blob) - pos < 4:
            raise ValueError("truncated forward payload")
        (argc,) = _U32.unpack_from(blob, pos)
        pos += 4
        argv = []
        for _ in range(argc):
            arg, pos = _take(blob, pos)
            argv.append(arg)
        argvs.append(argv)
    return argvs


def py_pack_replies(replies):
    return b"".join(_U32.pack(len(r)) + r for r in replies)


def py_assemble(out, packs):
    cursors = [0] * len(packs)
    chunks = []
    for item in out:
        if type(item) is bytes:
            chunks.append(item)
        else:
            reply, cursors[item] = _take(packs[item], cursors[item])
            chunks.append(reply)
    return b"".join(chunks)


try:
    from fastcache._native import assemble, pack_commands, pack_replies, unpack_commands
except ImportError:  # no compiler at install time
    assemble, pack_commands, pack_replies, unpack_commands = (
        py_assemble, py_pack_commands, py_pack_replies, py_unpack_commands)
