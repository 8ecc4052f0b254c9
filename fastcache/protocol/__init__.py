"""RESP2/RESP3 wire format, sans-IO: bytes to commands, reply values to bytes."""
