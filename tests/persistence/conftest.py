import pytest

from tests.support.persist import DurableServer


@pytest.fixture
def make_server():
    """make(*flags, shards=2) -> a DurableServer (not started), removed after the test."""
    made = []

    def make(*flags, shards=2):
        s = DurableServer(*flags, shards=shards)
        made.append(s)
        return s

    yield make
    for s in made:
        s.cleanup()
