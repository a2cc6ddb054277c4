"""The lab's test guest: its kernel command line and cache key (unit), and a real build + TCG boot (e2e).

The e2e tests build into the shared cache ($VIRTNET_CACHE_DIR or ~/.cache/virtnet): the first run
downloads the kernel package from Debian's mirror (~7 s here), later runs reuse the image.
"""

from __future__ import annotations

import dataclasses
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from virtnet.lab import guest_image as gi
from virtnet.lab.guest_image import (
    BuildInputs,
    GuestImage,
    build_guest_image,
    guest_cmdline,
    image_key,
    iperf_intervals,
)

BASE = "console=ttyS0 panic=-1 pci=nomsi loglevel=3"

# --------------------------------------------------------------------------------------------------
# iperf_intervals


def test_iperf_intervals_reads_each_seconds_rate_in_mbit_s() -> None:
    text = (
        "VIRTNET-IPERF-INTERVAL [  5]   0.00-1.00   sec  12.1 MBytes   101 Mbits/sec    0    218 KBytes\n"
        "VIRTNET-IPERF-INTERVAL [  5]   1.00-2.00   sec  0.00 Bytes  0.00 bits/sec    2   1.41 KBytes\n"
        "VIRTNET-IPERF-INTERVAL [  5]   2.00-3.00   sec   640 KBytes  5.24 Kbits/sec    0    218 KBytes\n"
        "VIRTNET-IPERF [  5]   0.00-3.00   sec  12.6 MBytes  35.2 Mbits/sec    2             sender\n"
    )
    assert iperf_intervals(text) == [(0.0, 1.0, 101.0), (1.0, 2.0, 0.0), (2.0, 3.0, 0.00524)]


# --------------------------------------------------------------------------------------------------
# guest_cmdline


def test_cmdline_defaults() -> None:
    assert guest_cmdline() == BASE


def test_cmdline_carries_every_option_in_order() -> None:
    line = guest_cmdline(
        ips=["10.0.0.1/24", "fd00::1/64"],
        ping="10.0.0.2",
        dirty_mib=64,
        iperf="client:10.0.0.2:5",
        extra="foo=1  bar",
    )
    assert line == (
        f"{BASE} virtnet.ip=10.0.0.1/24,fd00::1/64 virtnet.ping=10.0.0.2 virtnet.dirty=64"
        " virtnet.iperf=client:10.0.0.2:5 foo=1 bar"
    )


def test_cmdline_vga_puts_tty0_first_so_serial_stays_dev_console() -> None:
    assert guest_cmdline(vga=True).startswith("console=tty0 console=ttyS0 ")


def test_cmdline_iperf_server_and_ipv6_client() -> None:
    assert guest_cmdline(ips=["10.0.0.1/24"], iperf="server").endswith(" virtnet.iperf=server")
    assert guest_cmdline(ips=["fd00::2/64"], iperf="client:fd00::1:3").endswith(
        " virtnet.iperf=client:fd00::1:3"
    )


def test_cmdline_omits_zero_dirty() -> None:
    assert "virtnet.dirty" not in guest_cmdline(dirty_mib=0)


def test_cmdline_can_hold_the_dirtying_back_and_check_a_disk() -> None:
    words = guest_cmdline(dirty_mib=64, dirty_wait=True, disk=True).split()
    assert {"virtnet.dirty=64", "virtnet.dirtywait=1", "virtnet.disk=1"} <= set(words)
    assert "virtnet.dirtypace=20" in guest_cmdline(dirty_mib=64, dirty_pace_mib_s=20).split()


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"ips": "10.0.0.1/24"}, "list of ADDR/PREFIX"),
        ({"ips": ["10.0.0.1"]}, "not ADDR/PREFIX"),
        ({"ips": ["10.0.0.300/24"]}, r"ips\[0\]"),
        ({"ips": ["10.0.0.1/24", "10.0.0.1/16"]}, "given twice"),
        ({"ips": ["10.0.0.0/24"]}, "network or broadcast"),
        ({"ips": ["10.0.0.255/24"]}, "network or broadcast"),
        ({"ips": ["127.0.0.2/8"]}, "not a unicast"),
        ({"ips": ["224.0.0.1/24"]}, "not a unicast"),
        ({"ips": [42]}, "not ADDR/PREFIX"),
        ({"ping": "10.0.0.2"}, "needs the guest to have an address"),
        ({"ips": ["10.0.0.1/24"], "ping": "10.0.0.2/24"}, "ping"),
        ({"ips": ["10.0.0.1/24"], "ping": "0.0.0.0"}, "not a unicast"),
        ({"dirty_mib": -1}, "dirty_mib"),
        ({"dirty_mib": True}, "dirty_mib"),
        ({"dirty_mib": 1.5}, "dirty_mib"),
        ({"iperf": "server"}, "needs the guest to have an address"),
        ({"ips": ["10.0.0.1/24"], "iperf": "client"}, "'server' or 'client:ADDR:SECONDS'"),
        ({"ips": ["10.0.0.1/24"], "iperf": "client:10.0.0.2"}, "SECONDS"),
        ({"ips": ["10.0.0.1/24"], "iperf": "client:10.0.0.2:0"}, "SECONDS"),
        ({"ips": ["10.0.0.1/24"], "iperf": "client:10.0.0.2:ten"}, "SECONDS"),
        ({"ips": ["10.0.0.1/24"], "iperf": "client:nowhere:5"}, "iperf"),
        ({"ips": ["10.0.0.1/24"], "iperf": "Server"}, "'server' or"),
        ({"vga": "yes"}, "vga must be True or False"),
        ({"dirty_wait": True}, "dirty_wait needs dirty_mib"),
        ({"dirty_pace_mib_s": 10}, "with dirty_mib"),
        ({"dirty_mib": 8, "dirty_pace_mib_s": 0}, "use 1 to 1000"),
        ({"disk": 1}, "disk must be True or False"),
        ({"extra": "a\nb"}, "one-line"),
        ({"extra": "x" * 2100}, "x86 allows 2047"),
    ],
)
def test_cmdline_rejects_what_the_guest_cannot_use(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        guest_cmdline(**kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# Cache key and build pieces (no apt, no network)

FAKE = BuildInputs("linux-image-6.1.0-56-amd64", "6.1.192-2", "1:1.35.0-4", "3.12-1", b"#!/bin/busybox sh\n")


@pytest.mark.parametrize(
    "change",
    [
        {"kernel_package": "linux-image-6.1.0-57-amd64"},
        {"kernel_version": "6.1.193-1"},
        {"busybox_version": "1:1.36.1-1"},
        {"iperf3_version": "3.12-1+deb12u3"},
        {"init_script": b"#!/bin/busybox sh\necho changed\n"},
    ],
)
def test_every_input_changes_the_key(change: dict[str, object]) -> None:
    assert image_key(dataclasses.replace(FAKE, **change)) != image_key(FAKE)  # type: ignore[arg-type]


def test_builder_version_changes_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    before = image_key(FAKE)
    monkeypatch.setattr(gi, "BUILDER_VERSION", gi.BUILDER_VERSION + "-next")
    assert image_key(FAKE) != before


def test_resolve_inputs_reads_the_init_script(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(gi, "_installed_version", lambda package, path: "1.0")
    monkeypatch.setattr(gi, "_kernel_package", lambda root: ("linux-image-x", "1"))
    original = gi.resolve_inputs(tmp_path)
    assert original.init_script == gi.INIT_SCRIPT.read_bytes()
    monkeypatch.setattr(gi, "read_init_script", lambda: original.init_script + b"# edited\n")
    assert image_key(gi.resolve_inputs(tmp_path)) != image_key(original)


def test_missing_busybox_static_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(gi, "BUSYBOX", tmp_path / "no-busybox")
    with pytest.raises(gi.GuestImageError, match="apt-get install busybox-static"):
        build_guest_image(tmp_path)


def test_module_order_puts_dependencies_first_and_skips_builtins() -> None:
    kernel = gi.KernelPackage(
        depends={
            "virtio_net": ("virtio_ring", "virtio", "net_failover"),
            "virtio": ("virtio_ring",),
            "virtio_ring": (),
            "net_failover": ("failover",),
            "failover": (),
        },
        builtin={"failover"},
    )
    assert kernel.module_order(["virtio_net"]) == ["virtio_ring", "virtio", "net_failover", "virtio_net"]
    with pytest.raises(gi.GuestImageError, match="no module virtio_pci"):
        kernel.module_order(["virtio_pci"])


def test_ldd_output_gives_libraries_and_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    output = (
        "\tlinux-vdso.so.1 (0x00007ffd)\n"
        "\tlibiperf.so.0 => /lib/x86_64-linux-gnu/libiperf.so.0 (0x00007f89)\n"
        "\t/lib64/ld-linux-x86-64.so.2 (0x00007f8a)\n"
    )
    monkeypatch.setattr(gi, "_run", lambda cmd, **kw: output)
    assert gi._shared_libraries(Path("/usr/bin/iperf3")) == [
        Path("/lib/x86_64-linux-gnu/libiperf.so.0"),
        Path("/lib64/ld-linux-x86-64.so.2"),
    ]
    monkeypatch.setattr(gi, "_run", lambda cmd, **kw: "\tlibsctp.so.1 => not found\n")
    with pytest.raises(gi.GuestImageError, match=r"needs libsctp\.so\.1"):
        gi._shared_libraries(Path("/usr/bin/iperf3"))


@pytest.mark.skipif(shutil.which("cpio") is None, reason="GNU cpio is not installed")
def test_newc_archive_reads_back_with_gnu_cpio() -> None:
    entries = [
        gi.CpioEntry("bin", 0o040755),
        gi.CpioEntry("bin/hello", 0o100755, b"hello\n"),
        gi.CpioEntry("dev", 0o040755),
        gi.CpioEntry("dev/console", 0o020600, rdev=(5, 1)),
        gi.CpioEntry("odd", 0o100644, b"12345"),
    ]
    archive = gi._newc_archive(entries)
    listing = subprocess.run(["cpio", "-itv", "--quiet"], input=archive, capture_output=True, check=True)
    lines = listing.stdout.decode().splitlines()
    assert [line.split()[-1] for line in lines] == ["bin", "bin/hello", "dev", "dev/console", "odd"]
    assert lines[3].startswith("crw-------") and " 5,   1 " in lines[3]
    assert " root " in lines[1] and " 6 " in lines[1]


# --------------------------------------------------------------------------------------------------
# Build and boot (e2e)

BOOT_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def image() -> GuestImage:
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
    return build_guest_image()


@pytest.fixture
def guests() -> Iterator[Callable[..., tuple[subprocess.Popen[bytes], Path]]]:
    """Starts TCG guests; every one is stopped by its PID and waited for, whatever the test did."""
    started: list[subprocess.Popen[bytes]] = []

    def start(img: GuestImage, cmdline: str, log: Path, *nics: str) -> tuple[subprocess.Popen[bytes], Path]:
        cmd = [
            "qemu-system-x86_64",
            "-accel",
            "tcg",
            "-m",
            "256",
            "-smp",
            "1",
            "-kernel",
            str(img.kernel),
            "-initrd",
            str(img.initrd),
            "-append",
            cmdline,
            "-nographic",
            "-display",
            "none",
            "-monitor",
            "none",
            "-no-reboot",
            "-serial",
            f"file:{log}",
            *nics,
        ]
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        started.append(proc)
        return proc, log

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def wait_for_log(
    proc: subprocess.Popen[bytes], log: Path, done: Callable[[str], bool], timeout: float = BOOT_TIMEOUT
) -> str:
    """The console log once `done(text)` holds; fails early if QEMU exits (e.g. the guest panicked)."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if done(text):
            return text
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            pytest.fail(f"QEMU exited with {proc.returncode}: {out}\nconsole:\n{text}")
        time.sleep(0.2)
    pytest.fail(f"no match within {timeout:g} s; console:\n{text}")


def marker_lines(text: str, marker: str) -> list[str]:
    return [line[line.index(marker) :].strip() for line in text.splitlines() if marker in line]


@pytest.mark.e2e
def test_cached_call_is_fast_and_never_asks_apt(image: GuestImage, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_apt(cmd: list[str], **kwargs: object) -> str:
        raise AssertionError(f"a cache hit ran {cmd}")

    monkeypatch.setattr(gi, "_run", no_apt)
    started = time.monotonic()
    again = build_guest_image()
    elapsed = time.monotonic() - started
    assert again == image
    assert elapsed < 1.0, f"cache hit took {elapsed:.2f} s"
    assert image.kernel.stat().st_size > 1_000_000 and image.initrd.stat().st_size > 1_000_000


@pytest.mark.e2e
def test_changed_init_script_gives_a_new_key(image: GuestImage, monkeypatch: pytest.MonkeyPatch) -> None:
    guest_root = image.kernel.parent.parent
    assert image_key(gi.resolve_inputs(guest_root)) == image.key
    monkeypatch.setattr(gi, "read_init_script", lambda: gi.INIT_SCRIPT.read_bytes() + b"# edited\n")
    assert image_key(gi.resolve_inputs(guest_root)) != image.key


@pytest.mark.e2e
def test_guest_boots_under_tcg_and_reports_on_serial(
    image: GuestImage,
    guests: Callable[..., tuple[subprocess.Popen[bytes], Path]],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    cmdline = guest_cmdline(ips=["10.0.2.15/24"])
    # restrict=on: the user-mode NIC exists for the driver to find, but reaches nothing outside.
    started = time.monotonic()
    proc, log = guests(
        image, cmdline, tmp_path / "console.log", "-nic", "user,model=virtio-net-pci,restrict=on"
    )
    text = wait_for_log(proc, log, lambda t: "VIRTNET-BOOTED" in t)
    booted = time.monotonic() - started
    text = wait_for_log(
        proc, log, lambda t: len(marker_lines(t, "VIRTNET-TICK")) >= 2, timeout=BOOT_TIMEOUT - booted
    )
    record_property("seconds_to_booted", round(booted, 2))
    print(f"VIRTNET-BOOTED {booted:.1f} s after starting QEMU")

    assert len(marker_lines(text, "VIRTNET-BOOTED uptime=")) == 1
    (net_up,) = marker_lines(text, "VIRTNET-NET-UP")
    assert net_up.startswith("VIRTNET-NET-UP eth0 10.0.2.15/24 mac=52:54:00:") and net_up.endswith("queues=1")
    ticks = marker_lines(text, "VIRTNET-TICK")
    assert ticks[0].startswith("VIRTNET-TICK 0 up=") and ticks[1].startswith("VIRTNET-TICK 1 up=")
    assert "VIRTNET-INSMOD-FAIL" not in text and "VIRTNET-NET-FAIL" not in text


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.e2e
def test_two_guests_ping_and_iperf_over_a_loopback_socket_link(
    image: GuestImage,
    guests: Callable[..., tuple[subprocess.Popen[bytes], Path]],
    tmp_path: Path,
) -> None:
    """iperf3 runs from the initramfs with the libraries ldd named; traffic stays on 127.0.0.1."""
    port = free_loopback_port()
    server, server_log = guests(
        image,
        guest_cmdline(ips=["10.99.0.1/24"], iperf="server"),
        tmp_path / "server.log",
        "-netdev",
        f"socket,id=n0,listen=127.0.0.1:{port}",
        "-device",
        "virtio-net-pci,netdev=n0,mac=52:54:00:00:99:01",
    )
    wait_for_log(server, server_log, lambda t: "VIRTNET-IPERF-SERVER up" in t)
    client, client_log = guests(
        image,
        guest_cmdline(ips=["10.99.0.2/24"], ping="10.99.0.1", iperf="client:10.99.0.1:2"),
        tmp_path / "client.log",
        "-netdev",
        f"socket,id=n0,connect=127.0.0.1:{port}",
        "-device",
        "virtio-net-pci,netdev=n0,mac=52:54:00:00:99:02",
    )
    text = wait_for_log(
        client,
        client_log,
        lambda t: "VIRTNET-IPERF-OK" in t or "VIRTNET-IPERF-FAIL" in t or "VIRTNET-PING-FAIL" in t,
    )
    assert marker_lines(text, "VIRTNET-PING-OK") == ["VIRTNET-PING-OK 10.99.0.1"]
    assert any("5 packets received" in line for line in marker_lines(text, "VIRTNET-PING "))
    iperf = marker_lines(text, "VIRTNET-IPERF ")
    assert [line.split()[-1] for line in iperf] == ["sender", "receiver"]
    assert all("bits/sec" in line for line in iperf)
    assert "VIRTNET-IPERF-OK 10.99.0.1" in text
    # A line per second of the 2 s run (a little longer under TCG), each with traffic: the fault
    # tests read the gap a switch restart leaves in these.
    seconds = iperf_intervals(text)
    assert len(seconds) == 2 and seconds[0][0] == 0 and seconds[1][1] >= 2, text
    assert all(rate > 0 for _s, _e, rate in seconds)
    assert "VIRTNET-IPERF-START 10.99.0.1" in text and "VIRTNET-IPERF-RETRY" not in text
