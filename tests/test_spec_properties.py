"""Random valid specs always render to XML that libvirt's schema accepts and that round-trips."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from virtnet.domxml import HostChoices, render_domain, validate_domain
from virtnet.errors import SpecError
from virtnet.inventory import spec_of_xml
from virtnet.spec import spec_from_dict

MIB = "MiB"
MINIMAL: dict[str, Any] = {"name": "vm", "cpu": {"count": 1}, "memory": {"size": "64MiB"}}


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 8))
    threads = draw(st.sampled_from([t for t in (1, 2) if count % t == 0]))
    cores = draw(st.sampled_from([c for c in range(1, count // threads + 1) if (count // threads) % c == 0]))
    cpu: dict[str, Any] = {"count": count}
    if draw(st.booleans()):
        cpu.update(sockets=count // (threads * cores), cores=cores, threads=threads)
    cpu["mode"] = draw(st.sampled_from(["auto", "host-model", "maximum"]))
    if draw(st.booleans()):
        host_cpu = st.integers(0, 63).map(str)
        cpu["pinning"] = {
            "vcpus": {str(v): draw(host_cpu) for v in range(draw(st.integers(0, count)))},
            "emulator": draw(st.one_of(st.none(), st.just("0-1"))),
        }
    page_mib = draw(st.sampled_from([None, 2, 1024]))
    size_mib = draw(st.integers(1, 8)) * (page_mib or 2) * (2 if page_mib == 1024 else 64)
    memory: dict[str, Any] = {"size": f"{size_mib}{MIB}"}
    shared = draw(st.booleans())
    if shared:
        memory["access"] = "shared"
    if page_mib:
        memory["hugepages"] = {"page_size": f"{page_mib}{MIB}"}
        memory["allocation"] = draw(st.sampled_from(["immediate", "ondemand"]))
    spec: dict[str, Any] = {
        "name": draw(st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)),
        "virt_type": draw(st.sampled_from(["auto", "kvm", "qemu"])),
        "cpu": cpu,
        "memory": memory,
    }
    if count >= 2 and draw(st.booleans()):
        half = size_mib // 2 // (page_mib or 1) * (page_mib or 1)
        spec["numa"] = [
            {"cpus": "0", "memory": f"{half}{MIB}"},
            {"cpus": f"1-{count - 1}", "memory": f"{size_mib - half}{MIB}"},
        ]
    nics: list[dict[str, Any]] = []
    for i in range(draw(st.integers(0, 3))):
        if shared and draw(st.booleans()):
            nics.append(
                {
                    "type": "vhostuser",
                    "socket": f"/run/vhost/s{i}",
                    "queues": draw(st.integers(1, count)),
                    "mode": draw(st.sampled_from(["server", "client"])),
                }
            )
        else:
            forwards = [
                {"host_port": 10000 + 10 * i + j, "guest_port": 22} for j in range(draw(st.integers(0, 2)))
            ]
            nics.append({"type": "user", "forwards": forwards})
    spec["nics"] = nics
    spec["disks"] = [
        {
            "path": f"/images/d{i}.qcow2",
            "bus": draw(st.sampled_from(["virtio", "sata", "scsi"])),
            "cache": draw(st.sampled_from(["none", "writethrough"])),
        }
        for i in range(draw(st.integers(0, 3)))
    ]
    if draw(st.booleans()):
        spec["graphics"] = {"type": draw(st.sampled_from(["vnc", "spice"])), "password": "s3cret"}
        spec["video"] = draw(st.sampled_from(["virtio", "vga", "qxl"]))
    spec["usb_input"] = draw(st.booleans())
    if draw(st.booleans()):
        spec["sound"] = "intel-hda"
    if draw(st.booleans()):
        spec["boot"] = {"kernel": "/boot/vmlinuz", "initrd": "/boot/initrd", "cmdline": "console=ttyS0"}
    spec["console"] = draw(
        st.sampled_from(
            [
                {"type": "pty"},
                {"type": "pty", "log": "/var/log/c.log"},
                {"type": "file", "log": "/var/log/c.log"},
            ]
        )
    )
    return spec


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs(), st.sampled_from(["kvm", "qemu"]), st.sampled_from(["passt", "qemu-args"]))
def test_random_valid_specs_render_schema_valid_xml(data: dict[str, Any], virt_type: str, style: str) -> None:
    if virt_type == "qemu" and data["cpu"].get("mode") == "host-passthrough":
        return
    spec = spec_from_dict(data)
    domain = render_domain(spec, HostChoices(virt_type=virt_type, forward_style=style))  # type: ignore[arg-type]
    validate_domain(domain)
    assert spec_of_xml(domain.to_xml()) == spec
    assert render_domain(spec, HostChoices(virt_type=virt_type, forward_style=style)) == domain  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=210), st.text(max_size=300))
def test_any_title_and_description_is_refused_or_renders_schema_valid(title: str, description: str) -> None:
    """Whatever a user writes as title (virt-manager lists the domain by it) must not reach libvirt broken."""
    try:
        spec = spec_from_dict({**MINIMAL, "title": title, "description": description})
    except SpecError as err:
        for problem in err.problems:  # both fields may be wrong at once: one line each
            assert problem.path in ("title", "description") and "\n" not in str(problem)
        return
    domain = render_domain(spec, HostChoices(virt_type="qemu"))
    validate_domain(domain)
    assert spec_of_xml(domain.to_xml()) == spec
