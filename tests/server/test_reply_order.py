"""ReplyOrder keeps replies in request order whatever order their sources answer in."""
from hypothesis import given, settings, strategies as st

from fastcache.server.forward_codec import pack_replies
from fastcache.server.reply_order import ReplyOrder


class Harness:
    def __init__(self, nshards=3):
        self.written = []
        self.sent = []  # (owner, argvs, callback)
        self.order = ReplyOrder(nshards, self.written.append)

    def cut(self):
        self.order.cut(lambda owner, argvs, cb: self.sent.append((owner, argvs, cb)))

    def output(self):
        return b"".join(self.written)


def test_local_pass_is_written_at_once():
    h = Harness()
    h.order.out += [b"a", b"b"]
    h.cut()
    assert h.written == [b"ab"] and h.order.idle()


def test_forwards_fill_their_places_and_later_passes_wait():
    h = Harness()
    o = h.order
    o.out.append(b"1")
    o.forward(1, [b"GET", b"x"])
    o.out.append(b"3")
    o.forward(2, [b"GET", b"y"])
    o.forward(1, [b"GET", b"z"])
    h.cut()
    o.out.append(b"6")          # a later pass, local only: must wait
    h.cut()
    assert h.written == []
    assert [(owner, argvs) for owner, argvs, _ in h.sent] == [
        (1, [[b"GET", b"x"], [b"GET", b"z"]]), (2, [[b"GET", b"y"]])]
    h.sent[1][2](pack_replies([b"4"]))
    assert h.written == []
    h.sent[0][2](pack_replies([b"2", b"5"]))
    assert h.output() == b"123456" and o.idle()


def test_slot_filled_in_its_own_pass():
    h = Harness()
    slot = h.order.reserve()
    h.order.fill(slot, b"x")
    h.order.out.append(b"y")
    h.cut()
    assert h.output() == b"xy"


def test_slot_filled_after_the_pass():
    h = Harness()
    h.order.out.append(b"a")
    slot = h.order.reserve()
    h.order.out.append(b"c")
    h.cut()
    assert h.written == []
    h.order.fill(slot, b"b")
    assert h.output() == b"abc" and h.order.idle()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["local", "fwd1", "fwd2", "slot"]), max_size=6),
                max_size=5),
       st.randoms(use_true_random=False))
def test_any_answer_order_gives_request_order(passes, rnd):
    h = Harness()
    expected = []
    slots = []
    n = 0
    for kinds in passes:
        for kind in kinds:
            data = b"<%d>" % n
            n += 1
            expected.append(data)
            if kind == "local":
                h.order.out.append(data)
            elif kind == "slot":
                slots.append((h.order.reserve(), data))
            else:
                h.order.forward(int(kind[-1]), data)  # the "argv" carries its own reply
        h.cut()
    callbacks = [(cb, pack_replies(argvs)) for _, argvs, cb in h.sent]
    work = [("fwd", cb, replies) for cb, replies in callbacks] + [("slot", s, d) for s, d in slots]
    rnd.shuffle(work)
    for kind, target, value in work:
        if kind == "fwd":
            target(value)
        else:
            h.order.fill(target, value)
    assert h.output() == b"".join(expected)
    assert h.order.idle()
