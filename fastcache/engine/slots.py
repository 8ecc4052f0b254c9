"""Key -> hash slot (CRC16-XMODEM with hash tags, as Redis Cluster) -> shard."""
from binascii import crc_hqx

SLOTS = 16384


def key_slot(key):
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1:end]
    return crc_hqx(key, 0) & 16383


def slot_table(shards):
    """bytes mapping slot -> owning shard; shard i owns a contiguous range."""
    return bytes(slot * shards // SLOTS for slot in range(SLOTS))
