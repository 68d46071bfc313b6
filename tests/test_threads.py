"""``torch_threads``: the block runs with the asked thread count, the caller's is restored
(also after an error), every core by default, and a bad count is refused."""

from __future__ import annotations

import os

import pytest
import torch

from crysgnn_dgl.threads import torch_threads


def test_threads_are_set_inside_and_restored_after():
    before = torch.get_num_threads()
    with torch_threads(1) as used:
        assert used == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(KeyError), torch_threads(1):
        raise KeyError("inside")
    assert torch.get_num_threads() == before
    with torch_threads() as used:
        assert used == (os.cpu_count() or 1) == torch.get_num_threads()
    assert torch.get_num_threads() == before


def test_a_bad_thread_count_is_refused():
    with pytest.raises(ValueError, match="threads"):
        with torch_threads(0):
            pass
