"""What the lab's image builders share: a cache of finished builds, one directory per input key.

A build runs in a private directory beside its final place and becomes visible only when that
directory is renamed into place (atomic on one filesystem), so readers never see half an image and a
crashed build leaves nothing behind under the key. Builders of the same key serialise on a lock file.
Answers that are slow to compute from apt (candidate versions) are remembered together with a
fingerprint of apt's state, so a cache hit costs a few stat calls.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


def cached_build(
    root: Path, key: str, complete: Callable[[Path], bool], build: Callable[[Path], None]
) -> Path:
    """`root/key`, built first by `build(work_dir)` unless `complete(root/key)` already holds.

    `build` fills an empty work directory; on success it is renamed to `root/key`, on any exception
    it is deleted and the exception propagates.
    """
    final = root / key
    if not complete(final):
        with locked(root / f"{key}.lock"):
            if not complete(final):  # another builder may have finished while we waited
                remove_leftovers(final)
                work = Path(tempfile.mkdtemp(prefix=f".build-{key}-", dir=root))
                try:
                    work.chmod(0o755)  # mkdtemp's 0700 would hide the image from QEMU running as another user
                    build(work)
                    os.rename(work, final)
                except BaseException:
                    shutil.rmtree(work, ignore_errors=True)
                    raise
    return final


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """An exclusive flock: the kernel drops it when a holder dies, so a crash cannot wedge the cache."""
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_leftovers(final: Path) -> None:
    """Drop a broken image and the work dirs of crashed builds; the caller holds this key's lock."""
    for stale in final.parent.glob(f".build-{final.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    if final.exists():
        shutil.rmtree(final)


def apt_fingerprint() -> str:
    """Changes whenever `apt-get update`, a pin, a source or a dpkg run could change apt's candidates."""
    paths: list[Path] = [
        Path("/var/lib/dpkg/status"),
        Path("/etc/apt/preferences"),
        Path("/etc/apt/sources.list"),
    ]
    for folder in ("/var/lib/apt/lists", "/etc/apt/preferences.d", "/etc/apt/sources.list.d"):
        with contextlib.suppress(OSError):
            paths += sorted(p for p in Path(folder).iterdir() if p.is_file())
    lines = []
    for path in paths:
        with contextlib.suppress(OSError):
            st = path.stat()
            lines.append(f"{path} {st.st_size} {st.st_mtime_ns}")
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def write_synced(path: Path, data: bytes) -> None:
    """Write and fsync, so the rename that publishes an image never outlives its contents on disk."""
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` whole: readers see the old or the new content, never a mix."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
