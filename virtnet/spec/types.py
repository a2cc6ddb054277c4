"""Field types of the spec: each parses the user's text once and serializes back canonically."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import struct
from typing import Annotated

from virtnet.record import Parse, Secret
from virtnet.units import format_cpuset, format_size, parse_cpuset, parse_size


def _mac(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}", value):
        raise ValueError(f"{value!r} is not a MAC address; write six hex pairs like '52:54:00:12:34:56'")
    if int(value[:2], 16) & 1:
        raise ValueError(f"{value!r} is a multicast MAC; the first octet must be even, e.g. '52:54:00:...'")
    return value.lower()


def _name(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}", value):
        raise ValueError(
            f"{value!r} is not a usable name; use 1-64 letters, digits, '.', '_', '+' or '-', "
            "starting with a letter or digit"
        )
    return value


def _absolute_path(value: object) -> str:
    if not isinstance(value, str) or not value.startswith("/") or "\n" in value or "," in value:
        raise ValueError(f"{value!r} is not an absolute path without commas; write e.g. '/var/lib/virtnet/x'")
    return value


# What XML 1.0 cannot carry at all: control characters but tab, newline and CR; surrogates; FFFE/FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not text; write a string")
    bad = _NOT_XML.search(value)
    if bad:
        raise ValueError(f"contains {bad.group()!r}, which XML cannot hold; remove it")
    return value


def _secret(value: object) -> str:
    # The value never appears in the message: errors are printed and logged.
    if not isinstance(value, str):
        raise ValueError("must be a string; write it in quotes")
    if _NOT_XML.search(value):
        raise ValueError("contains a control character, which XML cannot hold; remove it")
    return value


def _title(value: object) -> str:
    # libvirt's schema wants one non-empty line: virt-manager's list shows it in place of the name.
    text = _text(value)
    if not text.strip() or "\n" in text or "\r" in text or len(text) > 200:
        raise ValueError(f"{text!r} is not a title; write one line of 1-200 characters")
    return text


def parse_hostname(value: object) -> str:
    # RFC 1123 labels: what `hostname` and cloud-init's set_hostname accept.
    label = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    if not isinstance(value, str) or len(value) > 253 or not re.fullmatch(rf"{label}(\.{label})*", value):
        raise ValueError(
            f"{value!r} is not a hostname; use letters, digits and '-' in dot-separated labels, e.g. 'web-1'"
        )
    return value


def _user_name(value: object) -> str:
    # What Debian's adduser accepts by default (NAME_REGEX), and nothing a shell would expand.
    if not isinstance(value, str) or not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", value):
        raise ValueError(
            f"{value!r} is not a user name; use 1-32 lower-case letters, digits, '_' or '-', "
            "starting with a letter or '_'"
        )
    if value == "default":
        raise ValueError("'default' is cloud-init's name for the image's own user; set default_user = true")
    return value


# The key types OpenSSH's sshd accepts in authorized_keys (ssh-keygen -t ..., and security keys).
SSH_KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)


def _ssh_public_key(value: object) -> str:
    """One authorized_keys line: TYPE BASE64 [COMMENT], the blob naming the same TYPE.

    The blob starts with its own key type as an SSH string (RFC 4253 section 6.6), so a private key,
    a fingerprint or a truncated paste is told apart from a public key without any cryptography.
    """
    fix = "paste one line of a .pub file, e.g. the output of `cat ~/.ssh/id_ed25519.pub`"
    if not isinstance(value, str) or "\n" in value.strip():
        raise ValueError(f"is not one public key line; {fix}")
    if "PRIVATE KEY" in value:
        raise ValueError(f"is a private key, which must never leave its machine; {fix}")
    parts = value.strip().split(maxsplit=2)
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        shown = parts[0][:40] if parts else ""
        raise ValueError(f"{shown!r} is not an ssh public key type; {fix}")
    try:
        blob = base64.b64decode(parts[1], validate=True)
        (length,) = struct.unpack(">I", blob[:4])
        inner = blob[4 : 4 + length].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError):
        inner = ""
    if inner != parts[0]:
        raise ValueError(f"the {parts[0]} key's data is damaged or of another type; {fix}")
    return " ".join(parts)


def _password_hash(value: object) -> str:
    # The value never appears in the message: it is a secret even when hashed.
    if not isinstance(value, str) or not re.fullmatch(r"\$[0-9a-z]+\$[^\s:]+", value):
        raise ValueError(
            "is not a crypt(3) password hash; make one with `mkpasswd -m sha-512` "
            "(never put a plain password here)"
        )
    return value


def _file_mode(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"0?[0-7]{3,4}", value):
        raise ValueError(f"{value!r} is not an octal file mode; write it as a string like '0644'")
    return value if value.startswith("0") else "0" + value


def _guest_address(value: object) -> str:
    """'dhcp', or a static IPv4 address with its prefix, canonical ('10.77.9.1/24')."""
    fix = "write an address with its prefix like '10.77.9.1/24', or 'dhcp'"
    if value == "dhcp":
        return value
    if not isinstance(value, str) or "/" not in value:
        raise ValueError(f"{value!r} is not an address with a prefix; {fix}")
    try:
        iface = ipaddress.IPv4Interface(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 address with a prefix; {fix}") from None
    net = iface.network
    if net.prefixlen < 31 and iface.ip in (net.network_address, net.broadcast_address):
        which = "network" if iface.ip == net.network_address else "broadcast"
        raise ValueError(
            f"{value!r} is the {which} address of {net}, not a host in it; "
            f"use a host address such as '{next(net.hosts())}/{net.prefixlen}'"
        )
    if iface.ip.is_loopback or iface.ip.is_multicast or iface.ip.is_unspecified:
        raise ValueError(f"{value!r} cannot be a NIC's address; {fix}")
    return str(iface)


def _group_name(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", value):
        raise ValueError(f"{value!r} is not a group name; use lower-case letters, digits, '_' or '-'")
    return value


def _owner(value: object) -> str:
    name = r"[a-z_][a-z0-9_-]{0,31}"
    if not isinstance(value, str) or not re.fullmatch(rf"{name}(:{name})?", value):
        raise ValueError(f"{value!r} is not an owner; write 'user' or 'user:group', e.g. 'root:root'")
    return value


# Sizes are bytes in Python and canonical binary strings ('4GiB') in TOML/JSON.
Size = Annotated[int, Parse(parse_size, format_size)]
# CPU sets are frozensets in Python and canonical libvirt cpusets ('0-2,5') in TOML/JSON.
CpuSet = Annotated[frozenset[int], Parse(parse_cpuset, format_cpuset)]
Mac = Annotated[str, Parse(_mac)]
Name = Annotated[str, Parse(_name)]
AbsolutePath = Annotated[str, Parse(_absolute_path)]
Title = Annotated[str, Parse(_title)]
Text = Annotated[str, Parse(_text)]
SecretText = Annotated[Secret, Parse(_secret)]
Hostname = Annotated[str, Parse(parse_hostname)]
UserName = Annotated[str, Parse(_user_name)]
SshPublicKey = Annotated[str, Parse(_ssh_public_key)]
PasswordHash = Annotated[Secret, Parse(_password_hash)]
FileMode = Annotated[str, Parse(_file_mode)]
GuestAddress = Annotated[str, Parse(_guest_address)]
GroupName = Annotated[str, Parse(_group_name)]
Owner = Annotated[str, Parse(_owner)]
