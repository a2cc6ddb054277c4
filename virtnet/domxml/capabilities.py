"""<capabilities>: what virtnet reads of a host's capabilities (its UUID, CPU, QEMU's user).

Read only, like libvirt hands it out; `virtnet host check` reads it without lxml (read_only).
"""

from __future__ import annotations

from virtnet.domxml.xmlbuilder import XMLBuilder, XMLChild, XMLProperty


class BaseLabel(XMLBuilder):
    """<baselabel type='kvm'>+64055:+994</baselabel>: the label QEMU of that virt type runs with."""

    TAG = "baselabel"
    type = XMLProperty("@type")
    label = XMLProperty(".")


class SecModel(XMLBuilder):
    TAG = "secmodel"
    model = XMLProperty("model")
    baselabels = XMLChild(BaseLabel, many=True)


class HostCpu(XMLBuilder):
    """<host><cpu>: the host's CPU, as a guest with host-passthrough sees it (pre-flight compares it)."""

    TAG = "cpu"
    model = XMLProperty("model")


class HostInfo(XMLBuilder):
    TAG = "host"
    uuid = XMLProperty("uuid")
    cpu = XMLChild(HostCpu)
    secmodels = XMLChild(SecModel, many=True)


class Capabilities(XMLBuilder):
    TAG = "capabilities"
    host = XMLChild(HostInfo)


def dac_label(caps: Capabilities, virt_type: str) -> str | None:
    """The DAC base label ('+uid:+gid') QEMU of `virt_type` runs as, or None when libvirt does not say."""
    models = caps.host.secmodels if caps.host is not None else []
    for model in models:
        if model.model == "dac":
            return next((label.label for label in model.baselabels if label.type == virt_type), None)
    return None
