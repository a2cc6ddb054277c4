"""virt_type auto: overrides, the spec, and the KVM probe's cached verdict."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from virtnet.errors import InputError
from virtnet.virt import kvm_probe
from virtnet.virt.virttype import resolve_virt_type


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VIRTNET_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("VIRTNET_VIRT_TYPE", raising=False)
    monkeypatch.delenv("VIRTNET_PROBE_KERNEL", raising=False)
    monkeypatch.setattr("os.access", lambda path, mode: True)  # as if /dev/kvm were usable
    return tmp_path


def store(cache: Path, usable: bool, key: str | None = None) -> None:
    verdict = kvm_probe.KvmVerdict(usable, "test verdict", key or kvm_probe.verdict_key())
    (cache / "kvm-verdict.json").write_text(json.dumps(asdict(verdict)))


def test_a_cached_hang_verdict_means_tcg(cache: Path) -> None:
    store(cache, usable=False)
    choice = resolve_virt_type("auto", None)
    assert choice.virt_type == "qemu" and "test verdict" in choice.reason


def test_a_cached_good_verdict_means_kvm(cache: Path) -> None:
    store(cache, usable=True)
    assert resolve_virt_type("auto", None).virt_type == "kvm"


def test_a_stale_verdict_is_ignored(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store(cache, usable=False, key="another kernel")
    monkeypatch.setattr(kvm_probe, "probe_kernel", lambda: None)
    choice = resolve_virt_type("auto", None)
    assert choice.virt_type == "kvm" and "not probed" in choice.reason


def test_overrides_win_over_spec_and_verdict(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store(cache, usable=False)
    assert resolve_virt_type("auto", None, "kvm").virt_type == "kvm"
    assert resolve_virt_type("qemu", None, "kvm").reason == "set by --virt-type"
    monkeypatch.setenv("VIRTNET_VIRT_TYPE", "kvm")
    assert resolve_virt_type("auto", None).reason == "set by $VIRTNET_VIRT_TYPE"
    assert resolve_virt_type("kvm", None, "qemu").virt_type == "qemu"
    monkeypatch.setenv("VIRTNET_VIRT_TYPE", "xen")
    with pytest.raises(InputError, match=r"\$VIRTNET_VIRT_TYPE: 'xen'"):
        resolve_virt_type("auto", None)


def test_the_spec_wins_over_the_verdict(cache: Path) -> None:
    store(cache, usable=False)
    assert resolve_virt_type("kvm", None).virt_type == "kvm"
