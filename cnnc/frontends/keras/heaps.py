"""The global heap collections of an HDF5 file, walked before h5py opens it.

libhdf5 keeps variable-length data in "global heap collections" (blocks signed
b"GCOL"); Keras 2 writes every string attribute, `model_config` included, as such data.
Reading one string makes libhdf5 (H5HG__cache_heap_deserialize) walk the objects of its
collection by their stored sizes, trusting them: an object of size 0 where a header
should be (a corrupted size field makes the walk land on padding) steps 0 bytes forever,
and an oversized one sends it past the block. That hang is in C, out of reach of signals
or any timeout in this process.

So this module walks every collection of the file first, as libhdf5 would, and refuses
a file whose walk would not end inside its block. Why a scan for the signature and not
the attributes' own heap IDs: neither h5py nor libhdf5 hands out a variable-length
value's heap ID without converting the value, and converting is what loads (and hangs
on) the collection; and a child process with a timeout would cost an interpreter and
h5py's import per file and could not hand back h5py objects. The scan reads the file
once, at disk speed. A signature inside weights data is walked too: float weights never
hold the bytes "GCOL\\x01" followed by a broken walk, and refusing such a file is the
safe side.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from cnnc.frontends.keras.limits import KerasFileError

SIGNATURE = b"GCOL\x01"           # the magic and version 1, the only one libhdf5 reads
SUPERBLOCK = b"\x89HDF\r\n\x1a\n"
CHUNK = 16 << 20                  # bytes scanned per read
MAX_STEPS = 4_000_000             # objects walked in one file (a Keras file has ~10 per layer)

ReadAt = Callable[[int, int], bytes]


def check(source: Any, what: str) -> None:
    """KerasFileError when a global heap collection of `source` (a path or a seekable
    binary file object) would make libhdf5 loop or read past the collection."""
    if isinstance(source, str):
        try:
            with open(source, "rb") as f:
                _check_open(f, os.fstat(f.fileno()).st_size, what)
        except OSError as e:
            raise KerasFileError(f"cannot read {what}: {e.strerror or e}") from None
    else:
        length = source.seek(0, os.SEEK_END)
        try:
            _check_open(source, length, what)
        finally:
            source.seek(0)


def _check_open(f: Any, length: int, what: str) -> None:
    def read_at(offset: int, n: int) -> bytes:
        f.seek(offset)
        return f.read(n)

    size_of_lengths = _size_of_lengths(read_at, length)
    if size_of_lengths is None:     # not HDF5 (h5py refuses it) or an odd superblock
        return
    budget = [MAX_STEPS]
    for at in _signatures(read_at, length):
        _walk(read_at, at, length, size_of_lengths, budget, what)


def _size_of_lengths(read_at: ReadAt, length: int) -> int | None:
    """The width of a length field, from the superblock (at 0, 512, 1024, ...)."""
    offset = 0
    while offset + 16 <= length:
        head = read_at(offset, 16)
        if head[:8] == SUPERBLOCK:
            size = head[14] if head[8] < 2 else head[10]
            return size if size in (2, 4, 8, 16, 32) else None
        offset = 512 if offset == 0 else offset * 2
    return None


def _signatures(read_at: ReadAt, length: int):
    """Every offset where SIGNATURE starts, reading CHUNK bytes at a time."""
    keep = len(SIGNATURE) - 1          # a signature may straddle two reads
    tail, pos = b"", 0
    while pos < length:
        block = read_at(pos, CHUNK)
        if not block:
            return
        data, base = tail + block, pos - len(tail)
        i = data.find(SIGNATURE)
        while i >= 0:
            yield base + i
            i = data.find(SIGNATURE, i + 1)
        tail, pos = data[-keep:], pos + len(block)


def _walk(read_at: ReadAt, at: int, length: int, width: int, budget: list[int], what: str) -> None:
    """Walk the collection at `at` as H5HG__cache_heap_deserialize does: a header (signature,
    3 reserved bytes, the collection's size), then objects (index u16, references u16,
    4 reserved bytes, size; header and data each padded to 8 bytes); index 0 is the free space, whose
    size includes its header. Each step must move forward and stay inside the block."""
    head = read_at(at + 8, width)
    size = int.from_bytes(head, "little")
    if len(head) < width or at + size > length:
        _corrupt(what, at, f"its {size:,} bytes run past the end of the file")
    object_header = _align(8 + width)      # libhdf5 pads both headers to 8 bytes
    p = object_header
    _step(budget, what)                # an empty collection costs a read too
    while p + object_header <= size:   # a shorter tail is free space, as libhdf5 reads it
        _step(budget, what)
        raw = read_at(at + p, object_header)
        index = int.from_bytes(raw[:2], "little")
        stored = int.from_bytes(raw[8:8 + width], "little")
        need = object_header + _align(stored) if index else stored
        if need == 0 or p + need > size:
            _corrupt(what, at, f"object {index} at byte {p:,} claims {stored:,} bytes")
        p += need


def _step(budget: list[int], what: str) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise KerasFileError(f"cannot read {what}: more than {MAX_STEPS:,} objects in its "
                             "global heaps", ["the file may be corrupt"])


def _align(n: int) -> int:
    return -(-n // 8) * 8


def _corrupt(what: str, at: int, detail: str) -> None:
    raise KerasFileError(f"cannot read {what}: the HDF5 global heap at byte {at:,} is corrupt "
                         f"({detail})", ["the file is truncated or corrupt"])
