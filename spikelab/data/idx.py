"""Reader for the IDX format of MNIST, Fashion-MNIST and KMNIST (gzipped or not).

An IDX file is a 4-byte magic number ``00 00 TT NN`` (TT the element type, NN the number of dimensions), then NN
big-endian uint32 sizes, then the elements in C order, big-endian. See http://yann.lecun.com/exdb/mnist/.
"""
from __future__ import annotations

import os
import struct

import numpy as np

from ._common import DataFormatError, check_file, read_maybe_gzip

# IDX type byte -> big-endian numpy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def parse_idx(raw: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of one (already gunzipped) IDX file into an array of native byte order.

    Raises :class:`DataFormatError` on a wrong magic number, an unknown type byte, or a payload whose size differs
    from ``prod(sizes) * itemsize`` (truncated file or trailing bytes).
    """
    if len(raw) < 4:
        raise DataFormatError(f"{source}: too short for an IDX header ({len(raw)} bytes)")
    zero0, zero1, type_code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero0 != 0 or zero1 != 0 or type_code not in IDX_DTYPES or ndim == 0:
        raise DataFormatError(
            f"{source}: wrong IDX magic number 0x{raw[:4].hex()} (expected 00 00, a type byte in "
            f"{sorted(hex(k) for k in IDX_DTYPES)}, then the number of dimensions >= 1)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFormatError(f"{source}: truncated IDX header ({len(raw)} bytes, need {header} for {ndim} dims)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header
    if got != expected:
        what = "truncated" if got < expected else "has trailing bytes"
        raise DataFormatError(
            f"{source}: IDX payload {what}: shape {shape} of {dtype.name} needs {expected} bytes, found {got}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzipped, detected from its first bytes) into a numpy array.

    Args:
        path: e.g. ``train-images-idx3-ubyte.gz`` -> uint8 ``[N, 28, 28]``; ``train-labels-idx1-ubyte`` -> ``[N]``.

    Returns:
        The array, shape from the header, dtype from the type byte (native byte order).
    """
    p = check_file(path)
    return parse_idx(read_maybe_gzip(p), source=repr(str(p)))


def write_idx_bytes(array: np.ndarray) -> bytes:
    """Encode ``array`` as IDX bytes (the inverse of :func:`parse_idx`); dtype must be one IDX can hold."""
    array = np.asarray(array)
    for code, dt in IDX_DTYPES.items():
        if array.dtype.newbyteorder("=") == dt.newbyteorder("="):
            header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            return header + np.ascontiguousarray(array, dtype=dt).tobytes()
    raise TypeError(f"array dtype {array.dtype} has no IDX type code (use uint8, int8, int16, int32, float32/64)")
