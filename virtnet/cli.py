"""The typer app: each command parses its arguments, calls the library and prints. Nothing else."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar, cast

import typer
from typer.core import TyperCommand, TyperGroup

from virtnet import __version__
from virtnet.errors import InputError, VirtnetError, raise_all

if TYPE_CHECKING:
    from virtnet.control.domains import DefinePlan, DefineResult
    from virtnet.control.migration import Outcome
    from virtnet.spec import VMSpec
    from virtnet.virt.host import Host

# Each command imports what it needs when it runs: libvirt, ovs, lxml, pydantic and the spec models
# each take tens of milliseconds to import, and a CLI's start-up time is its users' waiting time
# (bench/startup.py; tests/test_startup.py fails when --help imports them). Annotations that name
# those modules' types stay strings (TYPE_CHECKING above).


# rich_markup_mode=None: typer renders help and usage errors with click's plain formatter instead of
# importing rich (~60 ms here) for every `--help` and every mistyped option.
class _Root(TyperGroup):
    """The root group, which loads `virtnet lab` (virtnet/lab/cli.py) only when it is named.

    The test lab is not part of the product: no product module imports virtnet.lab, this one names
    it as a string (tests/test_layers.py), and every other command runs without it.
    """

    LAB = "lab"

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        at = names.index("switch") if "switch" in names else len(names)  # where `lab` was always listed
        return [*names[:at], self.LAB, *names[at:]]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name != self.LAB:
            return super().get_command(ctx, cmd_name)
        from importlib import import_module

        return typer.main.get_command(import_module("virtnet.lab.cli").lab_app)


app = typer.Typer(
    name="virtnet",
    cls=_Root,
    help="High-performance VMs on libvirt: hugepages, pinning, vhost-user NICs on OVS-DPDK.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    no_args_is_help=True,
)
F = TypeVar("F", bound=Callable[..., Any])
switch_app = typer.Typer(
    help="Open vSwitch with DPDK, through OVSDB: set-up, state, and ports whose VM is gone.",
    rich_markup_mode=None,
    no_args_is_help=True,
)
app.add_typer(switch_app, name="switch")
host_app = typer.Typer(
    help="The host as the walkthrough prepares it: checks with fixes, and hugepages.",
    rich_markup_mode=None,
    no_args_is_help=True,
)
app.add_typer(host_app, name="host")

SpecPath = Annotated[Path, typer.Argument(help="VM spec (TOML)", show_default=False)]
DomainName = Annotated[str, typer.Argument(help="domain name", show_default=False)]
WaitLockOption = Annotated[
    bool,
    typer.Option("--wait-lock", help="wait while another virtnet run holds the VM, instead of refusing"),
]
VirtTypeOption = Annotated[
    str | None,
    typer.Option("--virt-type", help="override the spec's virt_type: kvm or qemu (also $VIRTNET_VIRT_TYPE)"),
]


def command(
    name: str | None = None, *, group: typer.Typer | None = None, cls: type[TyperCommand] | None = None
) -> Callable[[F], F]:
    """Register a command; a virtnet error becomes one stderr line and the error's exit code.

    This is the CLI's one exit path for expected failures. Anything else is a bug and keeps its
    traceback.
    """

    def register(func: F) -> F:
        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except VirtnetError as err:
                for line in err.report():
                    typer.echo(line, err=True)
                raise typer.Exit(err.exit_code) from None

        (group or app).command(name=name, cls=cls)(run)
        return func

    return register


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"virtnet {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    connect: Annotated[
        str | None,
        typer.Option(
            "-c", "--connect", help="libvirt URI (default: $LIBVIRT_DEFAULT_URI, else qemu:///system)"
        ),
    ] = None,
    ovsdb: Annotated[
        str | None,
        typer.Option(
            "--ovsdb",
            help="OVSDB remote for vhost-user ports (default: $VIRTNET_OVSDB, else "
            "unix:/var/run/openvswitch/db.sock)",
        ),
    ] = None,
    host_name: Annotated[
        str | None,
        typer.Option(
            "-H", "--host", help="a host from the hosts file: its URI and OVSDB remote for -c and --ovsdb"
        ),
    ] = None,
    hosts_file: Annotated[
        Path | None,
        typer.Option(
            "--hosts",
            envvar="VIRTNET_HOSTS",
            help="the hosts file (default: $XDG_CONFIG_HOME/virtnet/hosts.toml)",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", help="print the version and exit", callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    if ovsdb is not None:
        from virtnet.ovs import remote

        wrong = remote.problem(ovsdb)
        if wrong:
            _fail(InputError(f"--ovsdb: {wrong}"))
    ctx.obj = Targets(connect, ovsdb, hosts_file)
    if host_name is not None:
        ctx.obj = _named_host(ctx.obj, host_name)


@dataclass(frozen=True)
class Targets:
    """Where the global options point: the libvirt host and the OVS database."""

    uri: str | None
    ovsdb: str | None
    hosts_file: Path | None = None


def _named_host(targets: Targets, name: str) -> Targets:
    """-H NAME: the URI and OVSDB remote (with its TLS files) of that hosts-file entry."""
    from virtnet.fleet.hostsfile import load_hosts
    from virtnet.fleet.remote import remember_tls

    if targets.uri is not None or targets.ovsdb is not None:
        _fail(InputError("-H names a host from the hosts file: give it, or -c/--ovsdb, not both"))
    try:
        entry = load_hosts(targets.hosts_file).get(name)
    except VirtnetError as err:
        _fail(err)
    remember_tls(entry)
    return Targets(entry.uri, entry.ovsdb, targets.hosts_file)


def _fail(err: VirtnetError) -> NoReturn:
    for line in err.report():
        typer.echo(line, err=True)
    raise typer.Exit(err.exit_code)


def load_spec_file(path: Path) -> VMSpec:
    """Load a spec and print its warnings to stderr."""
    from virtnet.outputs import load_spec

    return load_spec(path, _warn)


def _warn(line: str) -> None:
    typer.echo(line, err=True)


@contextmanager
def _host(ctx: typer.Context, *, events: bool = False) -> Iterator[Host]:
    from virtnet.virt.host import Host

    with Host.open(ctx.obj.uri, events=events) as host:
        yield host


@command()
def xml(
    spec_path: SpecPath,
    virt_type: VirtTypeOption = None,
    port_forward: Annotated[
        str,
        typer.Option(help="how port forwards are written: qemu-args (libvirt < 9.2) or passt"),
    ] = "qemu-args",
    seed: Annotated[
        bool, typer.Option("--seed", help="print the cloud-init seed's files instead (secrets masked)")
    ] = False,
    show_secrets: Annotated[
        bool, typer.Option("--show-secrets", help="print the graphics password (masked otherwise)")
    ] = False,
) -> None:
    """Print the libvirt domain XML for a spec (needs no libvirt)."""
    from virtnet.outputs import domain_xml, forward_problem

    if seed:
        problems = [bad for bad in (forward_problem(port_forward),) if bad]
        spec = _collect(problems, lambda: load_spec_file(spec_path))
        raise_all(problems)
        assert spec is not None  # raise_all raised when loading failed
        _print_seed(spec)
        return
    text = domain_xml(
        spec_path, virt_type=virt_type, port_forward=port_forward, warn=_warn, show_secrets=show_secrets
    )
    typer.echo(text, nl=False)


def _without_passwords(xml: str) -> str:
    from virtnet.domxml.secrets import SHOW_HOW, without_passwords

    shown = without_passwords(xml)
    if shown != xml:
        _warn(SHOW_HOW)
    return shown


def _print_seed(spec: VMSpec) -> None:
    from virtnet.cloudinit import build_seed
    from virtnet.spec.derived import seed_path

    found = build_seed(spec)
    if found is None:
        raise InputError(f"{spec.name}: the spec has no [cloud_init] table, so there is no seed")
    for warning in found.warnings:
        typer.echo(f"virtnet: warning: {warning}", err=True)
    typer.echo(
        f"# cloud-init seed {seed_path(spec)} (ISO 9660, label cidata), instance-id {found.instance_id}"
    )
    for name, text in found.shown().items():
        typer.echo(f"# --- {name} ---")
        typer.echo(text, nl=not text.endswith("\n"))


def _placed(targets: Targets, spec: VMSpec, choice: str) -> tuple[VMSpec, Targets]:
    """--host: choose the host, print why (stderr: stdout may be XML), relocate pins and sockets."""
    from virtnet.fleet.placement import place_from_file, placed_spec

    placement = place_from_file(targets.hosts_file, spec, choice)
    for verdict in placement.verdicts:
        _warn(f"placement: {verdict.line()}")
    chosen = placement.require(spec.name)
    entry = chosen.entry
    return placed_spec(spec, chosen), Targets(entry.uri, entry.ovsdb, targets.hosts_file)


@command()
def define(
    ctx: typer.Context,
    spec_path: SpecPath,
    virt_type: VirtTypeOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the XML and seed it would define; change nothing")
    ] = False,
    wait_lock: WaitLockOption = False,
    place_on: Annotated[
        str | None,
        typer.Option("--host", help="'auto' (or a name): place it on a host of the hosts file that fits"),
    ] = None,
) -> None:
    """Define (or update) a domain from a spec."""
    from virtnet.control import domains
    from virtnet.virt.virttype import override_problem

    problems = [bad for bad in (override_problem(virt_type),) if bad]
    spec = _collect(problems, lambda: load_spec_file(spec_path))
    raise_all(problems)
    if place_on is not None:
        spec, ctx.obj = _placed(ctx.obj, spec, place_on)
    with _host(ctx) as host:
        if dry_run:
            _print_define_plan(
                domains.plan_define(host, spec, virt_type=virt_type, ovsdb=ctx.obj.ovsdb), spec, host.uri
            )
            return
        result = domains.define(
            host,
            spec,
            virt_type=virt_type,
            ovsdb=ctx.obj.ovsdb,
            wait_lock=wait_lock,
            holder=f"define {spec_path}",
        )
    _print_defined(result, spec, host.uri)


def _print_defined(result: DefineResult, spec: VMSpec, uri: str) -> None:
    verb = "Updated" if result.redefined else "Defined"
    typer.echo(f"{verb} domain '{spec.name}' ({result.guest.uuid}) on {uri}")
    typer.echo(f"  type {result.virt_type}: {result.virt_type_reason}")
    for path in result.created_disks:
        typer.echo(f"  created disk {path}")
    for port in result.ports:
        state = "changed" if result.ports_changed else "unchanged"
        typer.echo(f"  OVS port {port.name} on {port.bridge} -> {port.socket} ({state})")
    for override in result.overrides:
        typer.echo(f"  overrides {override}")
    for warning in result.warnings:
        typer.echo(f"virtnet: warning: {warning}", err=True)
    if result.seed is not None:
        seed = result.seed
        typer.echo(f"  cloud-init seed {seed.path}: instance-id {seed.instance_id} ({seed.action})")
    if result.removed_seed:
        typer.echo(f"  removed cloud-init seed {result.removed_seed} (the spec has no [cloud_init] now)")
    if result.forward_style == "qemu-args":
        typer.echo(
            "  port forwards: QEMU hostfwd via <qemu:commandline> (this libvirt refuses the passt backend)"
        )
    elif result.forward_style == "passt":
        typer.echo("  port forwards: libvirt <portForward> with the passt backend")


def _print_define_plan(plan: DefinePlan, spec: VMSpec, uri: str) -> None:
    """--dry-run: a new domain's XML, or for a redefine a unified diff; then the OVS rows' diff."""
    from virtnet.changes import port_text, unified
    from virtnet.domxml.secrets import without_passwords

    verb = "update" if plan.redefines else "define"
    typer.echo(f"<!-- dry run: would {verb} '{spec.name}' on {uri}; {plan.virt_type_reason} -->")
    if plan.current_xml is None:
        typer.echo(_without_passwords(plan.xml), nl=False)
    else:
        before = without_passwords(plan.current_xml)
        diff = unified(before, _without_passwords(plan.xml), f"{spec.name} (now)", f"{spec.name} (defined)")
        typer.echo(diff or "# domain XML: no change", nl=not diff)
    for override in plan.overrides:
        typer.echo(f"# overrides {override}")
    if plan.seed is not None:
        _print_seed(spec)
    if plan.ports_after or plan.ports_before:
        before_name = "OVS (now)" if plan.ports_read else "OVS (not reachable: shown empty)"
        diff = unified(
            port_text(plan.ports_before), port_text(plan.ports_after), before_name, "OVS (defined)"
        )
        typer.echo(diff or "# OVS rows: no change", nl=not diff)
    typer.echo("# dry run: nothing was changed")


WaitFor = Annotated[str, typer.Option("--for", help="agent, ssh or cloud-init", show_default=False)]
WaitTimeout = Annotated[float, typer.Option("--timeout", min=1, help="seconds before giving up")]


@command()
def start(
    ctx: typer.Context,
    name: DomainName,
    wait: Annotated[
        str | None, typer.Option("--wait", help="then wait until ready: agent, ssh or cloud-init")
    ] = None,
    timeout: WaitTimeout = 600.0,
    wait_lock: WaitLockOption = False,
) -> None:
    """Start a defined domain; with --wait, return once the guest is ready for that."""
    from virtnet.control import domains

    what = _readiness("--wait", wait) if wait else None
    with _host(ctx) as host:
        guest = domains.start(host, name, ovsdb=ctx.obj.ovsdb, wait_lock=wait_lock)
        typer.echo(f"Domain '{name}' started")
        if what:
            _wait(host, guest, what, timeout)


@command()
def wait(
    ctx: typer.Context,
    name: DomainName,
    for_: WaitFor = "agent",
    timeout: WaitTimeout = 600.0,
) -> None:
    """Wait until a running guest is ready: its agent answers, sshd answers, or cloud-init is done."""
    what = _readiness("--for", for_)
    with _host(ctx) as host:
        _wait(host, host.lookup(name), what, timeout)


def _readiness(option: str, value: str) -> Any:
    from virtnet.readiness import READINESS

    return _choice(option, value, READINESS)


def _wait(host: Host, guest: Any, what: Any, timeout: float) -> None:
    from virtnet.inventory import spec_of
    from virtnet.readiness import wait_ready

    spec = spec_of(guest)
    if sys.stderr.isatty():
        from rich.console import Console

        with Console(stderr=True).status(f"waiting for {what} in {guest.name}") as status:
            ready = wait_ready(
                host,
                guest,
                spec,
                what,
                timeout_s=timeout,
                progress=lambda seen: status.update(f"waiting for {what} in {guest.name}: {seen}"),
            )
    else:
        ready = wait_ready(host, guest, spec, what, timeout_s=timeout)
    typer.echo(f"'{guest.name}' is ready for {what} after {ready.elapsed_s:.1f} s: {ready.detail}")


class _GuestCommand(TyperCommand):
    """Records what follows `--`, so a guest command is never mistaken for virtnet's own options.

    Unknown options are kept as arguments, so `virtnet exec vm ls -l` gets the one-line hint to
    write `--`, not click's "no such option: -l".
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.context_settings = {**self.context_settings, "ignore_unknown_options": True}

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta["virtnet.after_dashdash"] = args[args.index("--") + 1 :] if "--" in args else None
        return super().parse_args(ctx, args)


GuestArgv = Annotated[
    list[str] | None, typer.Argument(help="after --: the command and its arguments", show_default=False)
]


@command("exec", cls=_GuestCommand)
def exec_(
    ctx: typer.Context,
    name: DomainName,
    argv: GuestArgv = None,
    timeout: Annotated[
        float | None, typer.Option(min=0.1, help="seconds before the command is killed")
    ] = None,
    stdin: Annotated[bool, typer.Option("--stdin", help="pass this command's standard input to it")] = False,
) -> None:
    """Run a command in the guest through its agent (no shell, no network); exit with its status."""
    from virtnet.virt.agent import agent_of

    command_argv = _after_dashdash(ctx, argv, "exec", required=True)
    data = sys.stdin.buffer.read() if stdin else None
    with _host(ctx) as host:
        agent = agent_of(host.lookup(name))
        done = agent.run(command_argv, timeout_s=timeout, stdin=data)
    sys.stdout.buffer.write(done.stdout)
    sys.stdout.buffer.flush()
    sys.stderr.buffer.write(done.stderr)
    sys.stderr.buffer.flush()
    if done.truncated:
        typer.echo("virtnet: warning: the guest agent kept only the first 16 MiB of the output", err=True)
    raise typer.Exit(done.exit_code)


def _after_dashdash(ctx: typer.Context, argv: list[str] | None, verb: str, *, required: bool) -> list[str]:
    after = ctx.meta.get("virtnet.after_dashdash")
    if argv and after != argv:
        raise InputError(
            f"{verb}: put -- before the guest command, e.g. `virtnet {verb} NAME -- {' '.join(argv)}`"
        )
    if required and not after:
        raise InputError(f"{verb}: no command; write it after --, e.g. `virtnet {verb} NAME -- uname -a`")
    return after or []


@command(cls=_GuestCommand)
def ssh(
    ctx: typer.Context,
    name: DomainName,
    argv: GuestArgv = None,
    login: Annotated[
        str | None, typer.Option("-l", "--login", help="user (default: the spec's first user)")
    ] = None,
    identity: Annotated[Path | None, typer.Option("-i", "--identity", help="private key file")] = None,
    print_only: Annotated[bool, typer.Option("--print", help="print the ssh command, do not run it")] = False,
) -> None:
    """Log in with the system ssh: through a port forward or an agent-reported address, host keys pinned."""
    import shlex
    import subprocess

    from virtnet.inventory import spec_of
    from virtnet.sshlogin import login as ssh_login

    command_argv = _after_dashdash(ctx, argv, "ssh", required=False)
    with _host(ctx) as host:
        guest = host.lookup(name)
        found = ssh_login(host, guest, spec_of(guest), user=login, identity=identity, command=command_argv)
    if print_only:
        typer.echo(shlex.join(found.argv))
        return
    typer.echo(f"virtnet: ssh to '{name}' via {found.target.via}; host keys from {found.keys_from}", err=True)
    raise typer.Exit(subprocess.run(found.argv, check=False).returncode)


@command()
def stop(
    ctx: typer.Context,
    name: DomainName,
    force: Annotated[
        bool, typer.Option("--force", help="power off at once instead of an ACPI shutdown")
    ] = False,
    timeout: Annotated[float, typer.Option(min=1, help="seconds to wait for an ACPI shutdown")] = 60.0,
    wait_lock: WaitLockOption = False,
) -> None:
    """Shut a domain down (ACPI), or power it off with --force."""
    from virtnet.control import domains

    with _host(ctx) as host:
        domains.stop(host, name, force=force, timeout_s=timeout, wait_lock=wait_lock)
    typer.echo(f"Domain '{name}' {'powered off' if force else 'shut down'}")


@command()
def undefine(ctx: typer.Context, name: DomainName, wait_lock: WaitLockOption = False) -> None:
    """Remove a stopped domain's definition, its OVS ports and its cloud-init seed (disk images stay)."""
    from virtnet.control import domains

    with _host(ctx) as host:
        result = domains.undefine(host, name, ovsdb=ctx.obj.ovsdb, wait_lock=wait_lock)
    typer.echo(f"Domain '{name}' undefined")
    for port in result.ports:
        typer.echo(f"  removed OVS port {port}")
    if result.seed:
        typer.echo(f"  removed cloud-init seed {result.seed}")


@command()
def migrate(
    ctx: typer.Context,
    name: DomainName,
    dest_uri: Annotated[
        str | None, typer.Argument(help="destination libvirt URI (or --to HOST)", show_default=False)
    ] = None,
    to: Annotated[
        str | None,
        typer.Option("--to", help="a host of the hosts file (its URI, OVSDB, socket dir, link), or auto"),
    ] = None,
    policy: Annotated[
        str,
        typer.Option(
            help="auto (measure the dirty rate and choose), precopy, multifd, auto-converge or postcopy"
        ),
    ] = "auto",
    parallel: Annotated[int | None, typer.Option(min=1, max=255, help="multifd channels")] = None,
    auto_converge: Annotated[bool, typer.Option("--auto-converge", help="throttle vCPUs")] = False,
    postcopy: Annotated[bool, typer.Option("--postcopy", help="allow and make the post-copy switch")] = False,
    postcopy_after: Annotated[
        int | None, typer.Option(min=1, help="switch to post-copy after this many memory passes")
    ] = None,
    compress: Annotated[str | None, typer.Option(help="xbzrle: send only the changed bytes of pages")] = None,
    bandwidth: Annotated[int | None, typer.Option(min=1, help="cap in MiB/s for the whole job")] = None,
    max_downtime: Annotated[int | None, typer.Option(min=1, help="allowed pause at the end, in ms")] = None,
    max_downtime_ceiling: Annotated[
        int | None,
        typer.Option(min=1, help="steering may raise the allowed pause up to this, in ms (default 1000)"),
    ] = None,
    copy_storage: Annotated[bool, typer.Option("--copy-storage", help="copy non-shared disks")] = False,
    unsafe: Annotated[
        bool,
        typer.Option(
            "--unsafe",
            help="both hosts see the disks although libvirt cannot tell (one machine, as the lab)",
        ),
    ] = False,
    timeout: Annotated[float | None, typer.Option(min=1, help="seconds before --on-timeout acts")] = None,
    on_timeout: Annotated[str, typer.Option(help="abort or postcopy, when --timeout is reached")] = "abort",
    link_speed: Annotated[
        float,
        typer.Option(min=1, help="the link's MiB/s for --policy auto, when --bandwidth does not cap it"),
    ] = 1192.0,
    dest_ovsdb: Annotated[
        str | None,
        typer.Option(help="the destination's OVSDB remote (default: the default socket, on a local host)"),
    ] = None,
    dest_socket_dir: Annotated[
        Path | None, typer.Option(help="vhost-user socket directory on the destination (default: the same)")
    ] = None,
    dest_cpus: Annotated[
        str | None, typer.Option(help="host CPUs on the destination to map the pinned CPUs onto, in order")
    ] = None,
    probe: Annotated[
        str | None,
        typer.Option(help="a VM on either host, or 'host', that pings the guest every 10 ms during the move"),
    ] = None,
    probe_netns: Annotated[
        str | None, typer.Option(help="network namespace of --probe host (a lab host's)")
    ] = None,
    probe_nic: Annotated[
        int | None, typer.Option(min=0, help="the guest's NIC to ping (default: its first that is not user)")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="check and plan, change nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="the plan or report as JSON")] = False,
    wait_lock: WaitLockOption = False,
) -> None:
    """Live-migrate a running domain to another libvirt host, peer to peer, with its OVS ports."""
    from virtnet.control.migration import migrate as run_migration
    from virtnet.migration.display import ProgressBar
    from virtnet.migration.plan import MigrationRequest

    request = MigrationRequest(
        dest_uri=dest_uri or "",
        to=to,
        policy=cast(Any, policy),
        parallel=parallel,
        auto_converge=auto_converge,
        postcopy=postcopy,
        postcopy_after=postcopy_after,
        compress=cast(Any, compress),
        bandwidth_mib_s=bandwidth,
        max_downtime_ms=max_downtime,
        max_downtime_ceiling_ms=max_downtime_ceiling,
        copy_storage=copy_storage,
        unsafe=unsafe,
        timeout_s=timeout,
        on_timeout=cast(Any, on_timeout),
        link_mib_s=link_speed,
        dest_socket_dir=dest_socket_dir,
        dest_cpus=dest_cpus,
        dest_ovsdb=dest_ovsdb,
        probe=probe,
        probe_netns=probe_netns,
        probe_nic=probe_nic,
    )
    request.validate()
    # events: the job's figures come from libvirt's job-completed event, and libvirt wants its event
    # loop registered before the first connection opens (as virsh does), not after.
    with _host(ctx, events=True) as host, contextlib.nullcontext() if dry_run else ProgressBar(name) as bar:
        outcome = run_migration(
            host,
            name,
            request,
            ovsdb=ctx.obj.ovsdb,
            hosts_file=ctx.obj.hosts_file,
            dry_run=dry_run,
            watcher=bar,
            wait_lock=wait_lock,
        )
    for line in outcome.placement:
        _warn(f"placement: {line}")
    if as_json:
        typer.echo(json.dumps(_migration_json(outcome), indent=2))
    elif outcome.report is None:
        _print_migration_plan(outcome)
    else:
        for line in outcome.report.lines():
            typer.echo(line)
        if outcome.cleanup_note:
            typer.echo(outcome.cleanup_note)


def _migration_json(outcome: Outcome) -> dict[str, Any]:
    plan, report = outcome.plan, outcome.report
    return {
        "checks": outcome.checks,
        "policy": plan.choice.policy,
        "reason": plan.choice.reason,
        "flags": plan.options.flag_names(),
        "destination_ports": outcome.dest_ports,
        "destination_xml": _without_passwords(outcome.dest_xml) if report is None else None,
        "report": asdict(report) if report else None,
    }


@command()
def perf(
    ctx: typer.Context,
    ends: Annotated[
        list[str],
        typer.Argument(
            help="SRC DST: a VM, 'host' (the host side of the NIC's bridge) or 'lan' (--lan-netns); "
            "with --matrix, the VM to measure and a peer VM on the same host",
            show_default=False,
            metavar="SRC DST",
        ),
    ],
    nic: Annotated[
        int | None, typer.Option(min=0, help="the VM's NIC (spec index) to measure through")
    ] = None,
    streams: Annotated[int, typer.Option(min=1, max=128, help="parallel iperf3 streams (-P)")] = 4,
    seconds: Annotated[int, typer.Option(min=1, max=3600, help="iperf3 duration (-t)")] = 10,
    reverse: Annotated[bool, typer.Option("--reverse", help="DST sends to SRC (iperf3 -R)")] = False,
    ping_count: Annotated[int, typer.Option(min=1, max=10000, help="pings after iperf3")] = 10,
    port: Annotated[int, typer.Option(min=1, max=65535, help="iperf3's port")] = 5201,
    host_netns: Annotated[
        str | None, typer.Option(help="network namespace of the host side (a lab host's, where its br0 is)")
    ] = None,
    lan_netns: Annotated[
        str | None, typer.Option(help="network namespace of the LAN's far end (another host's)")
    ] = None,
    dst_connect: Annotated[
        str | None, typer.Option(help="libvirt URI of DST's host, for a VM elsewhere on the LAN")
    ] = None,
    matrix: Annotated[
        bool, typer.Option("--matrix", help="every NIC of the VM on every path: the walkthrough's table")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="the results as JSON")] = False,
) -> None:
    """Measure a network path as the walkthrough does: iperf3 and ping, through the NIC named."""
    from virtnet.perf import display
    from virtnet.perf.measure import PerfOptions
    from virtnet.perf.run import Matrix
    from virtnet.perf.run import perf as measure

    options = PerfOptions(streams=streams, seconds=seconds, reverse=reverse, ping_count=ping_count, port=port)
    result = measure(
        ctx.obj.uri,
        ends,
        options,
        matrix=matrix,
        nic=nic,
        host_netns=host_netns,
        lan_netns=lan_netns,
        dst_uri=dst_connect,
        progress=lambda line: None if as_json else typer.echo(line, err=True),
    )
    if as_json:
        data = display.matrix_json(result) if isinstance(result, Matrix) else display.path_json(result)
        typer.echo(json.dumps(data, indent=2))
        return
    for line in display.matrix_lines(result) if isinstance(result, Matrix) else display.path_lines(result):
        typer.echo(line)


def _print_migration_plan(outcome: Outcome) -> None:
    typer.echo("pre-flight checks passed:")
    for check in outcome.checks:
        typer.echo(f"  ok  {check}")
    plan = outcome.plan
    typer.echo(f"policy: {plan.choice.policy} ({plan.choice.reason})")
    typer.echo(f"flags: {' '.join(plan.options.flag_names())}")
    params = plan.options.params()
    if params:
        typer.echo("params: " + ", ".join(f"{key}={value}" for key, value in params.items()))
    if plan.postcopy_after is not None:
        typer.echo(f"post-copy switch: after {plan.postcopy_after} memory passes")
    rungs = [f"allowed downtime up to {plan.downtime_ceiling_ms} ms"]
    if plan.options.auto_converge:
        rungs.append("auto-converge")
    if plan.steer_postcopy or plan.postcopy_after is not None:
        rungs.append("post-copy")
    typer.echo(f"steering, if the passes stop shrinking: {' -> '.join(rungs)}")
    for source, dest in outcome.moves.sockets.items():
        if source != dest:
            typer.echo(f"socket: {source} -> {dest}")
    moved = {a: b for a, b in outcome.moves.cpus.items() if a != b}
    if moved:
        typer.echo("host CPUs: " + ", ".join(f"{a}->{b}" for a, b in sorted(moved.items())))
    if outcome.dest_ports:
        typer.echo(f"ports to create on the destination's OVS: {', '.join(outcome.dest_ports)}")
    typer.echo("dry run: nothing was changed")


def _collect(problems: list[InputError], check: Callable[[], Any]) -> Any:
    """The checked value, or None with the problem added to `problems`: options report all at once."""
    try:
        return check()
    except InputError as err:
        problems.append(err)
        return None


def _choice(option: str, value: str, allowed: tuple[str, ...]) -> Any:
    if value not in allowed:
        raise InputError(f"{option} {value}: choose one of {', '.join(allowed)}")
    return value


@command(name="hosts")
def hosts_(
    ctx: typer.Context,
    timeout: Annotated[float, typer.Option(min=0.1, help="seconds each host has to answer")] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """The hosts file's hosts at a glance: versions, CPUs, free hugepages per NUMA node, VMs."""
    from virtnet.fleet.hostsfile import load_hosts
    from virtnet.fleet.table import hosts_table
    from virtnet.fleet.view import gather

    rows = gather(list(load_hosts(ctx.obj.hosts_file)), timeout_s=timeout)
    if as_json:
        typer.echo(json.dumps([row.as_dict() for row in rows], indent=2))
    else:
        typer.echo(hosts_table(rows), nl=False)


@command()
def evacuate(
    ctx: typer.Context,
    host_name: Annotated[
        str, typer.Argument(help="the host to empty, from the hosts file", show_default=False)
    ],
    to: Annotated[
        list[str] | None, typer.Option("--to", help="a host to move VMs to (repeat; default: all others)")
    ] = None,
    parallel: Annotated[int, typer.Option(min=1, max=16, help="migrations at a time")] = 1,
    policy: Annotated[str, typer.Option(help="migration policy for each VM (as migrate --policy)")] = "auto",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="place every VM and print the plan; move none")
    ] = False,
) -> None:
    """Live-migrate every running VM off a host, each to a host placement chooses; then a summary."""
    from virtnet.fleet import evacuate as evacuation
    from virtnet.migration.plan import POLICIES

    _choice("--policy", policy, POLICIES)
    source, moves, dests = evacuation.plan(ctx.obj.hosts_file, host_name, to)
    if dry_run:
        for move in moves:
            typer.echo(f"{move.vm}: {move.why or move.result}")
        typer.echo(evacuation.summary(evacuation.Evacuation(evacuation.dry_run_moves(moves))), nl=False)
        typer.echo("# dry run: nothing was moved")
        return

    def progress(move: evacuation.Move) -> None:
        typer.echo(f"{move.vm}: {move.result}" + (f" ({move.source} -> {move.dest})" if move.dest else ""))

    done = evacuation.evacuate(source, moves, dests, parallel=parallel, policy=policy, on_done=progress)
    typer.echo(evacuation.summary(done), nl=False)
    if any(m.result != "moved" for m in done.moves):
        raise typer.Exit(1)


@command(name="list")
def list_(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="include domains that are not running")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """List domains, as `virsh list` does, with what virtnet manages marked."""
    from virtnet.outputs import list_output

    typer.echo(list_output(ctx.obj.uri, include_inactive=all_, as_json=as_json), nl=False)


@command()
def show(
    ctx: typer.Context,
    name: DomainName,
    as_json: Annotated[bool, typer.Option("--json", help="state and spec as JSON")] = False,
    as_xml: Annotated[bool, typer.Option("--xml", help="libvirt's domain XML")] = False,
    as_spec: Annotated[
        bool, typer.Option("--spec", help="the spec as TOML, for `virtnet define` (virtnet's domains)")
    ] = False,
) -> None:
    """Show a domain: its state and the spec it was made from, read from libvirt alone."""
    from virtnet.control.report import show as show_domain
    from virtnet.summary import report_rows

    given = [option for option, on in (("--json", as_json), ("--xml", as_xml), ("--spec", as_spec)) if on]
    if len(given) > 1:
        raise InputError(f"{' and '.join(given)}: choose one")
    with _host(ctx) as host:
        report = show_domain(host, name, ovsdb=ctx.obj.ovsdb, live=not (as_xml or as_spec))
    if as_xml:
        typer.echo(report.xml, nl=False)
    elif as_spec:
        _print_spec(name, report.spec)
    elif as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        rows = report_rows(report)
        width = max(len(label) for label, _ in rows) + 1
        for label, value in rows:
            typer.echo(f"{label + ':':<{width}} {value}")


def _print_spec(name: str, spec: VMSpec | None) -> None:
    from virtnet.spec.codec import spec_toml

    if spec is None:
        raise InputError(f"domain {name!r} has no virtnet spec; adopt it first with `virtnet adopt {name}`")
    if spec.graphics is not None and spec.graphics.password is not None:
        _warn("virtnet: note: graphics.password is not printed; add it to the file before defining it")
    typer.echo(spec_toml(spec), nl=False)


@command()
def adopt(
    ctx: typer.Context,
    name: DomainName,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print what it would store; change nothing")
    ] = False,
    wait_lock: WaitLockOption = False,
) -> None:
    """Bring a domain virt-install or virt-manager made under virtnet: store its spec, change nothing else."""
    from virtnet.changes import unified
    from virtnet.control.adoption import adopt as adopt_domain
    from virtnet.domxml.secrets import without_passwords

    with _host(ctx) as host:
        done = adopt_domain(host, name, dry_run=dry_run, wait_lock=wait_lock)
        uri = host.uri
    if dry_run:
        before, after = without_passwords(done.xml_before), without_passwords(done.xml_after)
        typer.echo(unified(before, after, f"{name} (now)", f"{name} (adopted)"), nl=False)
    else:
        typer.echo(f"Adopted domain '{name}' on {uri}: its spec is in <metadata>, nothing else changed")
    for line in done.left:
        typer.echo(f"  left as it is: {line}")
    for path in done.kept:
        typer.echo(f"  kept as the domain has it: {path}")
    typer.echo(f"  see the spec with `virtnet show {name} --spec`")
    if dry_run:
        typer.echo("# dry run: nothing was changed")


@command()
def console(
    ctx: typer.Context,
    name: DomainName,
    log: Annotated[
        bool, typer.Option("--log", help="follow the output read-only, until Ctrl-C or the guest stops")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="take the console over from another client holding it")
    ] = False,
) -> None:
    """The serial console, through libvirt's stream API as `virsh console`; Ctrl-] leaves."""
    from virtnet.viewing.console import attach
    from virtnet.viewing.terminal import raw_mode

    keyboard = None if log else sys.stdin.fileno()
    with (
        _host(ctx, events=True) as host,
        attach(host, name, _write_stdout, input_fd=keyboard, force=force) as session,
    ):
        if keyboard is None:
            typer.echo(f"Following the serial console of '{name}' read-only; Ctrl-C stops", err=True)
            try:
                reason = session.wait()
            except KeyboardInterrupt:
                return
        else:
            typer.echo(f"Connected to domain '{name}'\nEscape character is ^] (Ctrl-])", err=True)
            with raw_mode(keyboard):
                reason = session.wait()
    if reason == "guest-stopped":
        typer.echo(f"\nDomain '{name}' stopped; console closed", err=True)
    elif reason in ("escape", "input-closed"):
        typer.echo(f"\nDisconnected from domain '{name}'", err=True)


def _write_stdout(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


@command()
def screenshot(
    ctx: typer.Context,
    name: DomainName,
    file: Annotated[Path, typer.Argument(help="where to save it, e.g. vm.png", show_default=False)],
    screen: Annotated[int, typer.Option(min=0, help="which head of a multi-head display")] = 0,
) -> None:
    """Save what the guest's display shows (PNG with QEMU 7.2, whatever FILE is called)."""
    from virtnet.viewing.screenshot import take

    with _host(ctx) as host:
        shot = take(host, name, file, screen=screen)
    typer.echo(f"Screenshot of '{name}' saved to {file}: {shot.image.describe()}")
    if shot.mismatch:
        typer.echo(f"virtnet: warning: {shot.mismatch}", err=True)


@command()
def view(
    ctx: typer.Context,
    name: DomainName,
    viewer: Annotated[
        str, typer.Option(help="auto (virt-viewer, else virt-manager), virt-viewer or virt-manager")
    ] = "auto",
) -> None:
    """Open the graphical console in virt-viewer or virt-manager; returns when its window closes."""
    from virtnet.viewing import viewer as viewers

    with _host(ctx) as host:
        found = viewers.prepare(host, name, viewer)
    typer.echo(f"Opening the graphical console of '{name}' ({found.graphics}) with {found.launch.viewer}")
    if not found.running:
        typer.echo(f"Domain '{name}' is not running: the console shows once it starts", err=True)
    viewers.run(found.launch)


def _cpuset_option(option: str, text: str | None) -> frozenset[int] | None:
    from virtnet.units import parse_cpuset

    if text is None:
        return None
    try:
        return parse_cpuset(text)
    except ValueError as err:
        raise InputError(f"{option}: {err}") from None


@command("setup", group=switch_app)
def switch_setup(
    ctx: typer.Context,
    bridge: Annotated[str, typer.Option(help="the netdev bridge VMs attach to")] = "br0",
    pmd_cpus: Annotated[str | None, typer.Option(help="host CPUs for PMD threads, e.g. 1-2")] = None,
    lcore: Annotated[str | None, typer.Option(help="host CPUs for DPDK's lcore, e.g. 0")] = None,
    socket_mem: Annotated[
        int | None, typer.Option(min=1, help="MiB of hugepages DPDK takes (and may not exceed)")
    ] = None,
    extra: Annotated[str | None, typer.Option(help="dpdk-extra EAL arguments, e.g. '--no-pci'")] = None,
    postcopy: Annotated[
        bool,
        typer.Option(
            "--postcopy",
            help="vhost-postcopy-support=true: vhost-user guests may migrate with post-copy "
            "(read when ovs-vswitchd starts; not with --mlockall)",
        ),
    ] = False,
) -> None:
    """DPDK and the netdev bridge in one OVSDB transaction; idempotent; waits for DPDK to be up."""
    from virtnet.ovs import switch
    from virtnet.ovs.connection import Ovsdb, default_remote

    problems: list[InputError] = []
    settings = switch.SwitchSettings(
        bridge=bridge,
        pmd_cpus=_collect(problems, lambda: _cpuset_option("--pmd-cpus", pmd_cpus)),
        lcore_cpus=_collect(problems, lambda: _cpuset_option("--lcore", lcore)),
        socket_mem_mib=socket_mem,
        extra=extra,
        postcopy=postcopy,
    )
    raise_all(problems)
    with Ovsdb(ctx.obj.ovsdb or default_remote()) as db:
        report = switch.setup(db, settings)
    for change in report.changed:
        typer.echo(f"set {change}")
    if not report.changed:
        typer.echo("switch already set up: nothing changed")
    for key in report.needs_restart:
        typer.echo(f"virtnet: warning: {key} applies when ovs-vswitchd restarts", err=True)
    assert report.state is not None
    typer.echo(
        f"{report.state.version or 'DPDK'} initialised; bridge {bridge} (netdev) ready for vhost-user ports"
    )


@command("show", group=switch_app)
def switch_show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """DPDK state, CPU masks, bridges, and each port with its VM, link state and queues."""
    from virtnet.ovs import switch
    from virtnet.ovs.connection import Ovsdb, default_remote

    with Ovsdb(ctx.obj.ovsdb or default_remote()) as db:
        info = switch.describe(db)
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    typer.echo(f"Open vSwitch {info['ovs_version'] or '(version not recorded)'} at {info['remote']}")
    dpdk = (
        f"{info['dpdk_version'] or 'DPDK'} initialised"
        if info["dpdk_initialized"]
        else "DPDK not initialised"
    )
    typer.echo(
        f"{dpdk}; PMD cores {info['pmd_cpus'] or 'OVS default'}, lcore {info['lcore_cpus'] or 'default'}, "
        f"socket-mem {info['socket_mem'] or 'default'} MiB"
    )
    for bridge in info["bridges"]:
        typer.echo(f"bridge {bridge['name']} ({bridge['datapath_type']})")
        for port in bridge["ports"]:
            vm = f" vm {port['vm']}" if port["vm"] else ""
            queues = (
                f" vhost {port['vhost'] or '-'} n_rxq {port['n_rxq']} vrings {port['vrings'] or '-'}"
                if port["socket"]
                else ""
            )
            typer.echo(
                f"  {port['name']:<20} {port['type']:<20} link {port['link_state'] or '-':<5} "
                f"ofport {port['ofport'] if port['ofport'] is not None else '-'}{vm}{queues}"
            )


@command("gc", group=switch_app)
def switch_gc(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list, do not remove")] = False,
) -> None:
    """Remove vhost-user ports whose VM (external_ids:vm-uuid) no longer exists on the libvirt host."""
    from virtnet.control import domains

    with _host(ctx) as host:
        stale = domains.gc_ports(host, ovsdb=ctx.obj.ovsdb, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for port in stale:
        typer.echo(f"{verb} {port.name} on {port.bridge} (VM {port.vm_name or '?'} {port.vm_uuid} is gone)")
    if not stale:
        typer.echo("no orphaned ports")


@command()
def doctor(
    ctx: typer.Context,
    fix: Annotated[bool, typer.Option("--fix", help="repair what can be repaired (default: list)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="findings and actions as JSON")] = False,
) -> None:
    """List what is inconsistent on the host and its OVS after a fault; --fix repairs it, line by line."""
    from virtnet import doctor as checkup
    from virtnet.ovs.connection import default_remote

    with _host(ctx) as host:
        findings = checkup.examine(host, ctx.obj.ovsdb or default_remote())
        actions = checkup.repair(findings) if fix else []
    if as_json:
        data = {
            "findings": [f.as_dict() for f in findings],
            "actions": [{"subject": a.finding.subject, "line": a.line, "ok": a.ok} for a in actions],
        }
        typer.echo(json.dumps(data, indent=2))
    else:
        for finding in findings:
            how = f"fix: {finding.repair}" if finding.fixable else f"manual fix: {finding.repair}"
            typer.echo(f"{finding.kind} {finding.subject}: {finding.problem}; {how}")
        if not findings:
            typer.echo("nothing inconsistent")
        for action in actions:
            typer.echo(("fixed: " if action.ok else "FAILED: ") + action.line)
        if findings and not fix and any(f.fixable for f in findings):
            typer.echo("dry run: nothing was changed; repair with --fix")
    if any(not a.ok for a in actions):
        raise typer.Exit(1)


@command("check", group=host_app)
def host_check(
    ctx: typer.Context,
    spec_path: Annotated[
        Path | None, typer.Option("--spec", help="also check what this VM spec needs", show_default=False)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """One line per check (ok / warn / fail), each warning and failure with its fix. Exit 1 on a fail."""
    from virtnet.hostcheck.machine import Machine
    from virtnet.hostcheck.report import host_report
    from virtnet.ovs.connection import default_remote

    spec = load_spec_file(spec_path) if spec_path else None
    findings = host_report(ctx.obj.uri, Machine(), ctx.obj.ovsdb or default_remote(), spec)
    if as_json:
        typer.echo(json.dumps([f.as_dict() for f in findings], indent=2))
    else:
        for finding in findings:
            typer.echo(finding.line())
    if any(f.status == "fail" for f in findings):
        raise typer.Exit(1)


def _size_option(option: str, text: str) -> int:
    from virtnet.units import parse_size

    try:
        return parse_size(text)
    except ValueError as err:
        raise InputError(f"{option}: {err}") from None


@command("prepare", group=host_app)
def host_prepare(
    hugepages: Annotated[str, typer.Option(help="size of the hugepage pool, e.g. 2GiB", show_default=False)],
    page_size: Annotated[str, typer.Option(help="2MiB or 1GiB")] = "2MiB",
    persist: Annotated[
        bool, typer.Option("--persist", help="also write the sysctl and fstab entries")
    ] = False,
) -> None:
    """Reserve hugepages and mount hugetlbfs; idempotent; all or nothing."""
    from virtnet.hostcheck.machine import Machine
    from virtnet.hostcheck.prepare import prepare_hugepages

    problems: list[InputError] = []
    size = _collect(problems, lambda: _size_option("--hugepages", hugepages))
    page = _collect(problems, lambda: _size_option("--page-size", page_size))
    raise_all(problems)
    assert size is not None and page is not None
    changes = prepare_hugepages(Machine(), size, page, persist=persist)
    for change in changes:
        typer.echo(change)
    if not changes:
        typer.echo("hugepages already prepared: nothing changed")


def run() -> None:
    """The typer app; the console script enters through virtnet.launcher, which answers some argvs first."""
    app()
