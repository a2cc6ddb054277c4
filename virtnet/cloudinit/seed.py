"""The NoCloud seed of a spec: user-data, meta-data and network-config, and its instance-id.

Rendering is pure: the same spec (and user-data file) gives the same bytes, and the instance-id is
a hash of them, so it changes exactly when the provisioning changes. cloud-init runs its
once-per-instance modules again when it sees a new instance-id, and only then.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from virtnet.cloudinit.userdata import read_user_data
from virtnet.spec.derived import guest_hostname, guest_nic_name, nic_mac
from virtnet.spec.models import CloudInit, GuestUser, UserNic, VMSpec

SUDO_ALL = "ALL=(ALL) NOPASSWD:ALL"
QUEUES_RULES = "/etc/udev/rules.d/75-virtnet-queues.rules"
REDACTED = "<secret: not shown>"  # as virtnet.domxml.secrets shows a graphics password


@dataclass(frozen=True)
class Seed:
    """The three files of a NoCloud seed, as cloud-init reads them from the 'cidata' volume."""

    instance_id: str
    user_data: bytes
    meta_data: bytes
    network_config: bytes
    # What may be printed in place of user-data: secrets masked, a user's own file only named.
    user_data_shown: str
    warnings: tuple[str, ...] = ()

    def files(self) -> dict[str, bytes]:
        return {
            "user-data": self.user_data,
            "meta-data": self.meta_data,
            "network-config": self.network_config,
        }

    def shown(self) -> dict[str, str]:
        """The files as `virtnet xml --seed` and `define --dry-run` print them: no secret in them."""
        return {
            "user-data": self.user_data_shown,
            "meta-data": self.meta_data.decode(),
            "network-config": self.network_config.decode(),
        }


def build_seed(spec: VMSpec) -> Seed | None:
    """The seed of a provisioned spec, None without [cloud_init]. Reads cloud_init.user_data."""
    provisioning = spec.cloud_init
    if provisioning is None:
        return None
    warnings: tuple[str, ...] = ()
    if provisioning.user_data is not None:
        user_data, warnings = read_user_data(provisioning.user_data)
        warnings += tuple(
            f"nics[{i}].queues: {nic.queues} queues, but cloud_init.user_data is your own, so the guest "
            f"enables only as many queue pairs as it has vCPUs; add `ethtool -L <nic> combined {nic.queues}` "
            "to it (virtnet adds a udev rule for that when it writes the user-data)"
            for i, nic in spec.multiqueue_nics
        )
        shown = f"# passed through from {provisioning.user_data} ({len(user_data)} bytes)\n"
    else:
        user_data = _cloud_config(_user_data(spec, provisioning, redact=False))
        shown = _cloud_config(_user_data(spec, provisioning, redact=True)).decode()
    network_config = _yaml(_network_config(spec))
    hostname = guest_hostname(spec)
    digest = hashlib.sha256()
    for part in (spec.name.encode(), hostname.encode(), user_data, network_config):
        digest.update(len(part).to_bytes(8, "big") + part)
    instance_id = f"iid-{spec.name}-{digest.hexdigest()[:16]}"
    meta_data = _yaml({"instance-id": instance_id, "local-hostname": hostname})
    return Seed(instance_id, user_data, meta_data, network_config, shown, warnings)


def _user_data(spec: VMSpec, provisioning: CloudInit, *, redact: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"hostname": guest_hostname(spec), "preserve_hostname": False}
    users: list[Any] = ["default"] if provisioning.default_user else []
    users += [_user(user, redact=redact) for user in provisioning.users]
    if users:
        data["users"] = users
    write_files = [
        {"path": f.path, "content": f.content, "permissions": f.permissions, "owner": f.owner}
        for f in provisioning.write_files
    ]
    runcmd = [list(cmd) if isinstance(cmd, list) else cmd for cmd in provisioning.runcmd]
    queue_rules = _queue_rules(spec)
    if queue_rules:
        write_files.insert(0, {"path": QUEUES_RULES, "content": queue_rules, "permissions": "0644"})
        # The rule acts on every later boot; the NICs of this first one exist before it does.
        trigger = ["udevadm", "trigger", "--action=change", "--subsystem-match=net"]
        runcmd[:0] = [trigger, ["udevadm", "settle"]]
    if write_files:
        data["write_files"] = write_files
    if runcmd:
        data["runcmd"] = runcmd
    return data


def _queue_rules(spec: VMSpec) -> str:
    """A udev rule per multi-queue NIC, matched by MAC: the walkthrough's `ethtool -L <nic> combined N`.

    Linux enables one queue pair per vCPU by itself; a NIC with more queues than vCPUs (the
    walkthrough's 8 queues) needs ethtool, at every boot and after a hot-plug, so udev runs it.
    """
    lines = [
        f'ACTION=="add|change", SUBSYSTEM=="net", ATTR{{address}}=="{nic_mac(spec, i)}", '
        f'RUN+="/usr/sbin/ethtool -L $name combined {nic.queues}"'
        for i, nic in spec.multiqueue_nics
    ]
    return "".join(f"{line}\n" for line in lines)


def _user(user: GuestUser, *, redact: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": user.name}
    if user.shell:
        entry["shell"] = user.shell
    if user.sudo:
        entry["sudo"] = SUDO_ALL if user.sudo is True else user.sudo
    if user.groups:
        entry["groups"] = list(user.groups)
    if user.ssh_authorized_keys:
        entry["ssh_authorized_keys"] = list(user.ssh_authorized_keys)
    if user.password_hash is not None:
        entry["lock_passwd"] = False
        entry["hashed_passwd"] = REDACTED if redact else user.password_hash.get_secret_value()
    else:
        entry["lock_passwd"] = True
    return entry


def _network_config(spec: VMSpec) -> dict[str, Any]:
    """Network config v2, each NIC matched by its MAC and named eth<index>.

    Matching by MAC (with set-name) is what cloud-init 22.4's ifupdown renderer handles; a name
    pattern such as 'e*' becomes `iface all` there and networking fails. Listing every NIC that
    needs nothing keeps cloud-init from its fallback (DHCP on the first NIC, which stalls the boot
    for a minute on a switch without a DHCP server).
    """
    ethernets: dict[str, Any] = {}
    for index, nic in enumerate(spec.nics):
        address = nic.address or ("dhcp" if isinstance(nic, UserNic) else None)
        if address is None:
            continue
        name = guest_nic_name(index)
        entry: dict[str, Any] = {"match": {"macaddress": nic_mac(spec, index)}, "set-name": name}
        if address == "dhcp":
            entry["dhcp4"] = True
        else:
            entry["dhcp4"] = False
            entry["addresses"] = [address]
            if nic.gateway is not None:
                entry["gateway4"] = str(nic.gateway)
        if nic.dns:
            entry["nameservers"] = {"addresses": [str(ip) for ip in nic.dns]}
        ethernets[name] = entry
    return {"version": 2, "ethernets": ethernets}


def _cloud_config(data: dict[str, Any]) -> bytes:
    return b"#cloud-config\n" + _yaml(data)


def _yaml(data: dict[str, Any]) -> bytes:
    import yaml  # only provisioning needs it

    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=4096, allow_unicode=True)
    return text.encode()
