"""The spec as canonical JSON, the form it takes inside a domain's <metadata>."""

from __future__ import annotations

import json
from typing import Any

from virtnet.spec.load import spec_from_dict
from virtnet.spec.models import VMSpec

# Bumped when a change to VMSpec makes stored specs need converting.
SPEC_VERSION = 1


def dump_spec(spec: VMSpec) -> str:
    """Compact, deterministic JSON. Secrets are left out: libvirt and the seed keep them, nothing else."""
    secrets: dict[str, Any] = {
        "graphics": {"password"},
        "cloud_init": {"users": {"__all__": {"password_hash"}}},
    }
    data = spec.dump(exclude_defaults=True, exclude=secrets)
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def load_spec(text: str, *, password: str | None = None) -> VMSpec:
    """The inverse of dump_spec; `password` is the graphics password read back from libvirt."""
    data = json.loads(text)
    if password is not None and "graphics" in data:
        data["graphics"]["password"] = password
    return spec_from_dict(data)


def spec_toml(spec: VMSpec) -> str:
    """The spec as a TOML file `virtnet define` reads back to the same spec (secrets left out)."""
    import tomli_w

    return tomli_w.dumps(json.loads(dump_spec(spec)))
