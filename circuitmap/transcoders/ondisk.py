"""Tensors of safetensors files, read in pieces: whole, by row ranges, or by scattered rows.

A safetensors file is an 8-byte little-endian header length, a JSON header naming each tensor's
dtype, shape and byte range, then the raw data, row-major. So any row of a tensor is one byte
range of the file, and `DiskTensor` reads exactly the rows asked for (`os.preadv` straight into
the result's memory). Nothing else of the file enters this process's memory: that is what lets
circuitmap use transcoders far larger than memory, reading decoder rows only for active features
and encoders one chunk at a time. (Memory-mapping would not do: the kernel maps whole page-cache
folios on a fault, up to megabytes around each row, and counts them as the process's memory.)

The file is opened once and read with positional reads, so it may be replaced (not rewritten in
place) while a transcoder uses it.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
#: Upper bound of a believable header (safetensors itself refuses more than 100 MB).
_MAX_HEADER = 100_000_000


class SafetensorsFileError(ValueError):
    """A file that is not a well-formed safetensors file."""


class _OpenFile:
    """One open file descriptor shared by the tensors of a file; closed with the last of them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY)

    def read_into(self, buffer: np.ndarray, offset: int) -> None:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view):
            n = os.preadv(self.fd, [view[done:]], offset + done)
            if n <= 0:
                raise SafetensorsFileError(f"{self.path}: file ends early (truncated)")
            done += n

    def __del__(self) -> None:
        fd = getattr(self, "fd", None)
        if fd is not None:
            os.close(fd)


@dataclass(frozen=True)
class DiskTensor:
    """A tensor of a safetensors file, read only when (and as far as) asked."""

    file: _OpenFile
    offset: int  # of its first byte in the file
    dtype: torch.dtype
    shape: tuple[int, ...]

    @property
    def row_bytes(self) -> int:
        return _numel(self.shape[1:]) * _itemsize(self.dtype)

    def numel(self) -> int:
        return _numel(self.shape)

    def element_size(self) -> int:
        return _itemsize(self.dtype)

    def dim(self) -> int:
        return len(self.shape)

    def reshape(self, *shape: int) -> DiskTensor:
        """The same bytes with another shape (-1 allowed once)."""
        dims = list(shape[0] if len(shape) == 1 and isinstance(shape[0], tuple) else shape)
        if -1 in dims:
            known = _numel([s for s in dims if s != -1])
            dims[dims.index(-1)] = self.numel() // max(known, 1)
        if _numel(dims) != self.numel():
            raise ValueError(f"cannot reshape {list(self.shape)} to {dims}")
        return DiskTensor(self.file, self.offset, self.dtype, tuple(dims))

    def unsqueeze(self, dim: int) -> DiskTensor:
        dims = list(self.shape)
        dims.insert(dim, 1)
        return self.reshape(*dims)

    def __getitem__(self, index: int) -> DiskTensor:
        """Row `index` as a tensor of one dimension less (nothing read)."""
        if not 0 <= index < self.shape[0]:
            raise IndexError(f"row {index} out of range for {self.shape[0]} rows")
        offset = self.offset + index * self.row_bytes
        return DiskTensor(self.file, offset, self.dtype, self.shape[1:])

    def load(self) -> torch.Tensor:
        """The whole tensor (in the file's dtype)."""
        return self.rows(0, self.shape[0]) if self.shape else self._read(self.offset, ())

    def rows(self, start: int, stop: int) -> torch.Tensor:
        """Rows `start:stop` (one read)."""
        stop = min(stop, self.shape[0])
        return self._read(self.offset + start * self.row_bytes, (stop - start, *self.shape[1:]))

    def gather(self, ids: torch.Tensor | list[int], sub: int | None = None) -> torch.Tensor:
        """Rows `ids` (`[k, *shape[1:]]`), or only their `sub`-th slice along dimension 1
        (`[k, *shape[2:]]`): one positional read per row, nothing else of the file."""
        ids = torch.as_tensor(ids, dtype=torch.long).reshape(-1).tolist()
        tail = self.shape[1:] if sub is None else self.shape[2:]
        size = _numel(tail) * _itemsize(self.dtype)
        start = self.offset + (0 if sub is None else sub * size)
        out = np.empty((len(ids), size), dtype=np.uint8)
        for i, row in enumerate(ids):
            if not 0 <= row < self.shape[0]:
                raise IndexError(f"row {row} out of range for {self.shape[0]} rows")
            self.file.read_into(out[i], start + row * self.row_bytes)
        return _as_tensor(out, self.dtype, (len(ids), *tail))

    def _read(self, offset: int, shape: tuple[int, ...]) -> torch.Tensor:
        out = np.empty(_numel(shape) * _itemsize(self.dtype), dtype=np.uint8)
        self.file.read_into(out, offset)
        return _as_tensor(out, self.dtype, shape)


def _as_tensor(raw: np.ndarray, dtype: torch.dtype, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.from_numpy(raw.reshape(-1)).view(dtype).view(shape)


def open_safetensors(file: str | Path) -> dict[str, DiskTensor]:
    """Every tensor of a safetensors file as a `DiskTensor` (only the header is read)."""
    path = Path(file)
    handle = _OpenFile(path)
    size = os.fstat(handle.fd).st_size
    if size < 8:
        raise SafetensorsFileError("shorter than a safetensors header")
    (header_len,) = struct.unpack("<Q", os.pread(handle.fd, 8, 0))
    if header_len > min(size - 8, _MAX_HEADER):
        raise SafetensorsFileError("header runs past the end of the file (truncated)")
    try:
        header = json.loads(os.pread(handle.fd, header_len, 8))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsFileError(f"unreadable header ({e})") from None
    if not isinstance(header, dict):
        raise SafetensorsFileError("header is not a mapping")
    header.pop("__metadata__", None)
    start = 8 + header_len
    tensors = {}
    for name, info in header.items():
        dtype = _DTYPES.get(info.get("dtype"))
        if dtype is None:
            raise SafetensorsFileError(f"tensor {name} has unsupported dtype {info.get('dtype')!r}")
        begin, end = (start + int(o) for o in info["data_offsets"])
        shape = tuple(int(s) for s in info["shape"])
        if end > size or end - begin != _numel(shape) * _itemsize(dtype):
            raise SafetensorsFileError(f"tensor {name} runs past the end of the file (truncated)")
        tensors[name] = DiskTensor(handle, begin, dtype, shape)
    return tensors


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()
