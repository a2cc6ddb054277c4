"""The one place where libvirt's errors become virtnet's typed errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import libvirt

from virtnet import errors

# libvirt prints every error to stderr by default; virtnet reports them itself, once.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

_BY_CODE: dict[int, type[errors.HypervisorError]] = {
    libvirt.VIR_ERR_NO_DOMAIN: errors.DomainNotFound,
    libvirt.VIR_ERR_DOM_EXIST: errors.DomainExists,
    libvirt.VIR_ERR_OPERATION_INVALID: errors.InvalidDomainState,
    libvirt.VIR_ERR_XML_ERROR: errors.DomainConfigRejected,
    libvirt.VIR_ERR_XML_DETAIL: errors.DomainConfigRejected,
    libvirt.VIR_ERR_XML_INVALID_SCHEMA: errors.DomainConfigRejected,
    libvirt.VIR_ERR_CONFIG_UNSUPPORTED: errors.DomainConfigRejected,
    libvirt.VIR_ERR_NO_STORAGE_POOL: errors.StorageError,
    libvirt.VIR_ERR_NO_STORAGE_VOL: errors.StorageError,
    libvirt.VIR_ERR_STORAGE_VOL_EXIST: errors.StorageError,
    libvirt.VIR_ERR_NO_CONNECT: errors.ConnectionFailed,
    libvirt.VIR_ERR_INVALID_CONN: errors.ConnectionFailed,
    libvirt.VIR_ERR_CPU_INCOMPATIBLE: errors.CpuIncompatible,
    libvirt.VIR_ERR_OPERATION_ABORTED: errors.MigrationAborted,
}


def translate(err: libvirt.libvirtError, uri: str) -> errors.HypervisorError:
    """A typed error for a libvirt error, keeping libvirt's code and message."""
    code = err.get_error_code()
    cls = _BY_CODE.get(code, errors.HypervisorError)
    message = (err.get_error_message() or str(err)).strip()
    if "already exists" in message or "already defined" in message:
        cls = errors.DomainExists  # libvirt reports name/UUID clashes under several codes
    elif "Active console session exists" in message:
        cls = errors.ConsoleBusy  # VIR_ERR_OPERATION_FAILED, shared with every other failure
    return cls(f"{message} (libvirt at {uri})", code=code, uri=uri)


@contextmanager
def libvirt_errors(uri: str) -> Iterator[None]:
    """Turn any libvirtError raised inside the block into virtnet's typed error."""
    try:
        yield
    except libvirt.libvirtError as err:
        raise translate(err, uri) from None
