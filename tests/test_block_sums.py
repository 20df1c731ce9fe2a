"""s2lib.signal.timing.block_sums / block_signal: exact integer block sums (checked against Python sums), the
accumulator at its overflow limit, strided rows, the dropped partial block, and float input."""
from __future__ import annotations

import numpy as np
import pytest

from s2lib.signal.timing import block_signal, block_sums


def _by_hand(x: np.ndarray, block: int) -> list[list[int]]:
    nb = x.shape[1] // block
    return [[sum(int(v) for v in row[j * block:(j + 1) * block]) for j in range(nb)] for row in x]


@pytest.mark.parametrize("block", [1, 3, 50, 100, 250])
def test_int8_block_sums_equal_python_sums(block: int) -> None:
    rng = np.random.default_rng(block)
    x = rng.integers(-128, 128, size=(5, 4 * block - 1), dtype=np.int8)   # 3 blocks + a partial one
    got = block_sums(x, block)
    assert got.tolist() == _by_hand(x, block)              # the trailing partial block is dropped
    assert got.shape == (5, 3)


@pytest.mark.parametrize("value", [-128, 127])
def test_the_int16_accumulator_holds_a_full_256_sample_block(value: int) -> None:
    x = np.full((2, 512), value, dtype=np.int8)
    got = block_sums(x, 256)
    assert got.dtype == np.int16 and got.tolist() == [[256 * value] * 2] * 2
    wide = block_sums(np.full((1, 600), value, dtype=np.int8), 300)   # past int16: a wider accumulator
    assert wide.dtype == np.int32 and wide.tolist() == [[300 * value] * 2]


def test_strided_frames_of_a_larger_buffer() -> None:
    rng = np.random.default_rng(7)
    buf = rng.integers(-128, 128, size=(6, 1000), dtype=np.int8)
    view = buf[::2, 101:701]                                # rows 2 strides apart, odd start
    assert block_sums(view, 20).tolist() == _by_hand(np.array(view), 20)
    assert block_sums(view, 60).tolist() == _by_hand(np.array(view), 60)   # reduceat's path (blocks >= 50)
    assert block_sums(view[:, :59], 60).shape == (3, 0)                   # shorter than one block: none


def test_float_input_and_the_block_signal() -> None:
    x = np.array([[0.5, 1.5, 2.0, 4.0, 9.0]])
    np.testing.assert_array_equal(block_sums(x, 2), [[2.0, 6.0]])
    raw = np.array([[10, 12, 14, 16]], dtype=np.int8)
    # s = gain·(raw − baseline) averaged per block: gain −0.4 mV/count, baseline 11 counts
    np.testing.assert_allclose(block_signal(raw, 2, -0.4, np.array([11.0])), [[0.0, -1.6]], atol=1e-6)


@pytest.mark.parametrize("dtype, block", [(np.uint8, 250), (np.uint8, 128), (np.int8, 256), (np.int16, 2)])
def test_the_accumulator_holds_the_extreme_block_sums(dtype, block: int) -> None:
    """uint8 blocks reach 255·block: above 128 samples that overflows int16, so a wider accumulator is taken."""
    info = np.iinfo(dtype)
    for value in (info.min, info.max):
        x = np.full((1, 2 * block), value, dtype=dtype)
        assert block_sums(x, block).tolist() == [[block * int(value)] * 2]
