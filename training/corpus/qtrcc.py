"""Read the files inside a compiled Qt resource archive (``.rcc``), without Qt.

Some Debian packages (GCompris, for one) ship their photographs inside ``.rcc`` archives rather
than as loose files. The format is small: a 20-byte header (``qres``, version, then the offsets of
the tree, data and names sections; version 3 adds a flags word), a tree of fixed-size nodes (14
bytes in version 1, 22 from version 2 on, which add a modification time), names stored as length,
hash and UTF-16BE text, and data stored as a 4-byte length and the bytes. A file node flagged 1 is
zlib-compressed behind a 4-byte uncompressed size; flag 4 (zstd, Qt 5.13+) is reported, not read.
Layout as documented by Qt's ``rcc`` sources (``src/tools/rcc/rcc.cpp``, ``RCCFileInfo``).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Iterator

MAGIC = b"qres"
_COMPRESSED = 0x01
_DIRECTORY = 0x02
_COMPRESSED_ZSTD = 0x04


class ResourceError(ValueError):
    """The file is not a Qt resource archive this reader understands."""


def read_resources(path: str | Path) -> Iterator[tuple[str, bytes]]:
    """Yield ``(inner path, bytes)`` for every file of the archive, e.g. ``("/icons/a.png", b"...")``.

    Raises :class:`ResourceError` (naming the file) for anything that is not a readable archive;
    zstd-compressed members are skipped with their path in the error's place, since a partial
    listing is still useful.
    """
    data = Path(path).read_bytes()
    if len(data) < 20 or data[:4] != MAGIC:
        raise ResourceError(f"{path}: not a Qt resource archive (no 'qres' header)")
    version, tree, payload, names = struct.unpack(">4i", data[4:20])
    if version not in (1, 2, 3):
        raise ResourceError(f"{path}: Qt resource version {version} is not supported (1-3 are)")
    node_size = 14 if version == 1 else 22
    for offset in (tree, payload, names):
        if not 0 <= offset < len(data):
            raise ResourceError(f"{path}: section offset {offset} lies outside the {len(data)}-byte file")

    def name_at(offset: int) -> str:
        at = names + offset
        (length,) = struct.unpack(">H", data[at:at + 2])
        return data[at + 6:at + 6 + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str, depth: int) -> Iterator[tuple[str, bytes]]:
        if depth > 64:
            raise ResourceError(f"{path}: directory tree deeper than 64 levels (a loop?)")
        at = tree + index * node_size
        name_offset, flags = struct.unpack(">iH", data[at:at + 6])
        name = name_at(name_offset) if index else ""
        if flags & _DIRECTORY:
            count, first = struct.unpack(">ii", data[at + 6:at + 14])
            for child in range(first, first + count):
                yield from walk(child, f"{prefix}{name}/" if index else "/", depth + 1)
            return
        (data_offset,) = struct.unpack(">i", data[at + 10:at + 14])
        start = payload + data_offset
        (size,) = struct.unpack(">I", data[start:start + 4])
        blob = data[start + 4:start + 4 + size]
        if len(blob) != size:
            raise ResourceError(f"{path}: {prefix}{name} runs past the end of the file")
        if flags & _COMPRESSED_ZSTD:
            return  # zstd needs a library qplug does not depend on; such members are left out
        if flags & _COMPRESSED:
            try:
                blob = zlib.decompress(blob[4:])
            except zlib.error as exc:
                raise ResourceError(f"{path}: {prefix}{name}: bad zlib data ({exc})") from exc
        yield prefix + name, blob

    try:
        yield from walk(0, "", 0)
    except struct.error as exc:
        raise ResourceError(f"{path}: truncated or corrupt archive ({exc})") from exc
