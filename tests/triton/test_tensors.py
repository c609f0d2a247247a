"""Tensor plumbing: inputs copied to chosen addresses for the placement-rotating timing."""

import torch

from ksdk.evaluation.timers import placed

ALIGN = 2 << 20


def test_placed_copies_start_at_the_asked_offset_past_a_boundary_with_the_same_values():
    x = torch.randn(64, 48)
    w = torch.randn(48, 32).t()  # not contiguous: strides are kept
    for offset in (0, 28 << 10, 56 << 10):
        px, pw, n = placed([x, w, 7], torch.device("cpu"), offset)
        assert n == 7
        for src, got in ((x, px), (w, pw)):
            assert got.data_ptr() % ALIGN == offset
            assert got.stride() == src.stride() and torch.equal(got, src)
        assert px.untyped_storage().data_ptr() != pw.untyped_storage().data_ptr()  # a buffer each


def test_placed_tuples_stay_tuples_and_numbers_pass_through():
    out = placed((torch.ones(3, dtype=torch.float16), 2.5), torch.device("cpu"), 4096)
    assert isinstance(out, tuple) and out[1] == 2.5 and out[0].dtype == torch.float16
    assert out[0].data_ptr() % ALIGN == 4096
