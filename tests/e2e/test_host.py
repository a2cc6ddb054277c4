"""`virtnet host` for real: hugepages reserved, mounted, checked and given back on this machine; the
checks against the lab's libvirtd and DPDK switch; define refusing what the host cannot give."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lab_support import LabClient

from virtnet.hostcheck.daemon import daemon_pid

PREPARE_SCRIPT = """
import json
from virtnet.errors import HostNotReady
from virtnet.hostcheck.machine import Machine
from virtnet.hostcheck.prepare import prepare_hugepages
from virtnet.hostcheck.report import hugepage_findings

MIB = 1024 * 1024
machine = Machine()
before = machine.pool(2 * MIB).total
out = {"before": before}
out["changes"] = prepare_hugepages(machine, (before + 32) * 2 * MIB, 2 * MIB)
out["again"] = prepare_hugepages(machine, (before + 32) * 2 * MIB, 2 * MIB)
out["findings"] = [f.as_dict() for f in hugepage_findings(machine)]
try:
    prepare_hugepages(machine, 1024 * 1024 * MIB, 2 * MIB)  # 1 TiB: more than this machine has
except HostNotReady as err:
    out["refused"] = str(err)
out["after_refusal"] = machine.pool(2 * MIB).total
out["release"] = prepare_hugepages(machine, before * 2 * MIB, 2 * MIB, mount=False)
out["final"] = machine.pool(2 * MIB).total
print(json.dumps(out))
"""


def test_prepare_reserves_mounts_checks_and_releases_hugepages(tmp_path: Path) -> None:
    script = tmp_path / "prepare.py"
    script.write_text(PREPARE_SCRIPT)
    # A private mount namespace: the hugetlbfs mount vanishes with it; the page pool is machine-wide.
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--", sys.executable, str(script)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    out = json.loads(done.stdout)
    before = out["before"]
    assert out["changes"][0] == f"2MiB hugepages: {before} -> {before + 32} ({(before + 32) * 2}MiB)"
    assert any(
        change.startswith("mounted hugetlbfs (pagesize=2M) on /dev/hugepages") for change in out["changes"]
    )
    assert out["again"] == []  # idempotent
    findings = {f["name"]: f for f in out["findings"]}
    assert findings["hugepages 2MiB"]["status"] == "ok"
    assert (
        findings["hugetlbfs 2MiB"]["status"] == "ok"
        and "/dev/hugepages" in findings["hugetlbfs 2MiB"]["detail"]
    )
    assert "nothing was changed" in out["refused"]
    assert out["after_refusal"] == before + 32  # all or nothing: the pool is as it was
    assert out["final"] == before
    assert int(Path("/proc/sys/vm/nr_hugepages").read_text()) == before


def test_check_reads_the_lab_hosts_libvirtd_and_dpdk_switch(lab0: LabClient) -> None:
    done = lab0.virtnet("host", "check", "--json", check=False)
    findings = {f["name"]: f for f in json.loads(done.stdout)}
    assert findings["libvirt"]["status"] == "ok" and "QEMU 7.2" in findings["libvirt"]["detail"]
    assert findings["dpdk"]["status"] == "ok" and "initialised" in findings["dpdk"]["detail"]
    assert lab0.vsctl("get", "Open_vSwitch", ".", "dpdk_initialized") == "true"
    assert "br0" in findings["bridges"]["detail"]
    # hugetlbfs as the lab's libvirtd sees it, in its own mount namespace
    libvirtd = int(Path(lab0.host.dir, "libvirtd.pid").read_text())
    assert daemon_pid(lab0.host.uri) == libvirtd
    assert (
        findings["hugetlbfs 2MiB"]["status"] == "ok"
        and f"pid {libvirtd}" in findings["hugetlbfs 2MiB"]["detail"]
    )


def test_check_reports_pins_on_pmd_cores(lab0: LabClient) -> None:
    lab0.virtnet("switch", "setup", "--pmd-cpus", "1")
    try:
        spec = lab0.spec("pmdclash", pin={"0": "1"}, emulator="0")
        done = lab0.virtnet("host", "check", "--spec", str(spec), check=False)
        assert done.returncode == 1
        line = next(line for line in done.stdout.splitlines() if "spec switch" in line)
        assert line.startswith("FAIL") and "cpu.pinning.vcpus.0: host CPU 1 is an OVS PMD core" in line
        assert "pmd cores        pmd-cpu-mask=0x2 (CPUs 1)" in done.stdout
    finally:
        lab0.vsctl("remove", "Open_vSwitch", ".", "other_config", "pmd-cpu-mask")


def test_define_refuses_a_vm_bigger_than_the_free_hugepages(lab0: LabClient) -> None:
    spec = lab0.spec("toobig", memory="64GiB")
    check = lab0.virtnet("host", "check", "--spec", str(spec), check=False)
    line = next(line for line in check.stdout.splitlines() if "spec hugepages" in line)
    refused = lab0.virtnet("define", str(spec), check=False)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "toobig needs 32768 free 2MiB hugepages" in refused.stderr
    assert line.split("spec hugepages", 1)[1].split(" -> fix: ")[0].strip() in refused.stderr  # same words
    assert "virtnet host prepare --hugepages" in refused.stderr
    assert "toobig" not in lab0.virsh("list", "--all", "--name").stdout.split()
    assert lab0.vm_ports() == []
