"""A timed request's reply is polled for back to back (frames._spin): it still arrives whole, a peer that never
replies still meets the request's deadline (polling stops there, whatever its own limit), and a peer that dies while
the judge polls is a closed peer, not a hang."""

import socket
import threading
import time

import pytest

from ksdk.evaluation import frames


def pair():
    judge, cand = socket.socketpair()
    return frames.Reader(judge), cand


def test_a_reply_that_comes_while_the_judge_polls_is_read_whole():
    reader, cand = pair()
    threading.Timer(0.02, lambda: frames.send(cand, {"op": "reply", "ok": True, "placed": [[1, 2]]})).start()
    now = time.monotonic()
    msg, _ = reader.recv(now + 5, spin_until=now + 1)
    assert msg == {"op": "reply", "ok": True, "placed": [[1, 2]]}


def test_polling_stops_at_the_requests_deadline_even_when_its_own_limit_is_later():
    reader, _cand = pair()
    now = time.monotonic()
    with pytest.raises(TimeoutError):
        reader.recv(now + 0.05, spin_until=now + 30)
    assert time.monotonic() - now < 10  # not the 30 s the polling alone would have allowed


def test_a_peer_that_dies_while_the_judge_polls_is_closed():
    reader, cand = pair()
    threading.Timer(0.02, cand.close).start()
    now = time.monotonic()
    with pytest.raises(frames.PeerClosed):
        reader.recv(now + 5, spin_until=now + 1)
