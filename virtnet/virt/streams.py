"""libvirt streams used blocking, to completion: screenshots, volume download and upload."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import libvirt

CHUNK = 256 * 1024


@contextlib.contextmanager
def aborted_on_error(stream: libvirt.virStream) -> Iterator[libvirt.virStream]:
    """Abort the stream when the block fails, so libvirtd drops its end of the transfer too."""
    try:
        yield stream
    except BaseException:
        with contextlib.suppress(libvirt.libvirtError):
            stream.abort()
        raise


def receive_all(stream: libvirt.virStream, chunk: int = CHUNK) -> bytes:
    """Everything the stream sends until its end, then finish it."""
    chunks = []
    while data := stream.recv(chunk):
        chunks.append(data)
    stream.finish()
    return b"".join(chunks)


def send_all(stream: libvirt.virStream, data: bytes, chunk: int = CHUNK) -> None:
    """Send `data`, then finish the stream."""
    for offset in range(0, len(data), chunk):
        stream.send(data[offset : offset + chunk])
    stream.finish()
