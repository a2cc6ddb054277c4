"""virtnet's cache directory: the test guest image and the KVM probe's verdict live there."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$VIRTNET_CACHE_DIR, else ~/.cache/virtnet: one cache shared by tests, lab and demo."""
    env = os.environ.get("VIRTNET_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "virtnet"
