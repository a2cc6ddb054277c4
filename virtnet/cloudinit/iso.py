"""The seed as an ISO 9660 image labelled 'cidata', written in memory with pycdlib.

pycdlib (pure Python, maintained, on PyPI) writes ISO 9660 with Joliet and Rock Ridge names, which is
what `genisoimage -J -r` / `xorriso -as mkisofs -J -r` produce for cloud-init. It needs no
subprocess and no temporary files, so the image can go straight into libvirt's storage API (and to
a remote host). It also reads an image back, which tells whether the seed already on a host is current.
"""

from __future__ import annotations

import io
from collections.abc import Iterable

VOLUME_LABEL = "cidata"  # cloud-init's NoCloud finds its seed by this label


def seed_iso(files: dict[str, bytes]) -> bytes:
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=VOLUME_LABEL, sys_ident="LINUX")
    for name, data in files.items():
        # ISO 9660 level 3 names are upper case, 8.3-ish; Linux reads the Rock Ridge/Joliet names.
        iso_name = "/" + name.replace("-", "").upper()[:8] + ".;1"
        iso.add_fp(io.BytesIO(data), len(data), iso_name, rr_name=name, joliet_path="/" + name)
    out = io.BytesIO()
    iso.write_fp(out)
    iso.close()
    return out.getvalue()


def read_seed_files(image: bytes, names: Iterable[str]) -> dict[str, bytes] | None:
    """The named files of a seed image by their Rock Ridge names, read in one pass over the image;
    None when the image is not a seed holding all of them."""
    import pycdlib
    from pycdlib.pycdlibexception import PyCdlibException

    iso = pycdlib.PyCdlib()
    found = {}
    try:
        iso.open_fp(io.BytesIO(image))
        for name in names:
            out = io.BytesIO()
            iso.get_file_from_iso_fp(out, rr_path="/" + name)
            found[name] = out.getvalue()
        iso.close()
    except PyCdlibException:
        return None
    return found
