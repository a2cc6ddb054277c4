"""A user's own user-data file, checked before it goes into a seed: #cloud-config and valid YAML."""

from __future__ import annotations

from pathlib import Path

from virtnet.errors import SpecError

FIELD = "cloud_init.user_data"
MAX_BYTES = 1024 * 1024  # a seed is a cdrom; a megabyte of cloud-config is a mistake


def read_user_data(path: str) -> tuple[bytes, tuple[str, ...]]:
    """The file's bytes and warnings about it, or a SpecError naming the field and the fix."""
    import yaml  # only provisioning needs it

    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise SpecError(FIELD, f"cannot read {path} ({err.strerror})", "check the path") from None
    if len(data) > MAX_BYTES:
        raise SpecError(FIELD, f"{path} has {len(data)} bytes", "keep user-data under 1 MiB")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise SpecError(FIELD, f"{path} is not UTF-8 text", "save it as UTF-8") from None
    first = text.split("\n", 1)[0].rstrip()
    if first != "#cloud-config":
        raise SpecError(
            FIELD,
            f"{path} starts with {first[:40]!r}, not '#cloud-config'",
            "make '#cloud-config' its first line (virtnet passes only cloud-config through)",
        )
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).split("\n")[0]
        raise SpecError(FIELD, f"{path}{where}: {problem}", "fix the YAML there") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise SpecError(FIELD, f"{path} is a YAML {type(document).__name__}", "make it a mapping of keys")
    warnings = []
    users = document.get("users")
    if isinstance(users, list) and "default" not in users:
        warnings.append(
            f"{FIELD}: {path} lists users without 'default', so the image's own user is not created; "
            "add '- default' to users if that is not intended"
        )
    return data, tuple(warnings)
