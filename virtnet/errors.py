"""The whole error hierarchy.

Every error a user can cause or meet carries one line that says what is wrong and how to fix it.
`exit_code` tells the CLI what to return: 2 for bad input, 1 for runtime failures. Anything that is
not a `VirtnetError` is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Sequence


class VirtnetError(Exception):
    """Root of virtnet's errors. `details` are lines the CLI prints after the one-line message."""

    exit_code = 1
    details: tuple[str, ...] = ()

    def report(self) -> list[str]:
        """The lines the CLI prints on stderr: the message, then each detail indented."""
        return [f"virtnet: error: {self}", *(f"  {line}" for line in self.details)]


class InputError(VirtnetError):
    """The user's input is wrong; fixing the input fixes the error."""

    exit_code = 2


class InputErrors(InputError):
    """Several things wrong with the input, found at once: the CLI prints one line for each."""

    def __init__(self, errors: Sequence[InputError]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(str(err) for err in self.errors))

    def report(self) -> list[str]:
        return [line for err in self.errors for line in err.report()]


def raise_all(errors: Sequence[InputError]) -> None:
    """Raise nothing, the one error, or all of them together."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise InputErrors(errors)


class SpecError(InputError):
    """A VM spec is invalid. `path` is the field path, e.g. ``nics[1].queues``."""

    def __init__(self, path: str, problem: str, fix: str = "", *, source: str = "") -> None:
        self.path = path
        self.problem = problem
        self.fix = fix
        self.source = source
        where = f"{source}: " if source else ""
        field = f"{path}: " if path else ""
        tail = f"; {fix}" if fix else ""
        super().__init__(f"{where}{field}{problem}{tail}")

    @property
    def problems(self) -> tuple[SpecError, ...]:
        """Every problem this error reports (one here; SpecErrors holds several)."""
        return (self,)

    def with_source(self, source: str) -> SpecError:
        return SpecError(self.path, self.problem, self.fix, source=source)


class SpecErrors(SpecError):
    """Several problems in one spec, each with its field path and fix: the CLI prints a line for each.

    It is a SpecError (the first problem's path, problem and fix), so code that catches SpecError
    catches it; str() holds every problem, one per line.
    """

    def __init__(self, problems: Sequence[SpecError]) -> None:
        first = problems[0]
        super().__init__(first.path, first.problem, first.fix, source=first.source)
        self._problems = tuple(problems)
        self.args = ("\n".join(str(problem) for problem in self._problems),)

    @property
    def problems(self) -> tuple[SpecError, ...]:
        return self._problems

    def with_source(self, source: str) -> SpecError:
        return SpecErrors([problem.with_source(source) for problem in self._problems])

    def report(self) -> list[str]:
        return [f"virtnet: error: {problem}" for problem in self._problems]


def spec_errors(problems: Sequence[SpecError]) -> SpecError:
    """One SpecError for a list of problems: the problem itself when there is one."""
    unique = list({(p.source, p.path, p.problem, p.fix): p for p in problems}.values())
    return unique[0] if len(unique) == 1 else SpecErrors(unique)


class SpecFileError(InputError):
    """A spec file cannot be read or is not valid TOML."""


class SchemaValidationError(VirtnetError):
    """Rendered XML does not validate against libvirt's RelaxNG schema: a bug in virtnet."""


class HypervisorError(VirtnetError):
    """libvirt refused or failed an operation."""

    def __init__(self, message: str, *, code: int | None = None, uri: str = "") -> None:
        self.code = code
        self.uri = uri
        super().__init__(message)


class ConnectionFailed(HypervisorError):
    """libvirtd cannot be reached."""


class DomainNotFound(HypervisorError):
    """No domain of that name on the host."""

    exit_code = 2


class DomainExists(HypervisorError):
    """A domain of that name or UUID exists and is not ours to replace."""

    exit_code = 2


class InvalidDomainState(HypervisorError):
    """The operation does not fit the domain's state (e.g. start a running domain)."""


class DomainConfigRejected(HypervisorError):
    """libvirt rejected the domain XML (parse, validation or unsupported configuration)."""


class StorageError(HypervisorError):
    """A disk volume could not be found or created through libvirt's storage API."""


class LabError(VirtnetError):
    """The lab could not be brought up, torn down or inspected."""


class OvsdbError(VirtnetError):
    """Open vSwitch's database refused or failed an operation."""


class OvsdbUnreachable(OvsdbError):
    """No ovsdb-server answers at the remote."""


class OvsdbTransactionFailed(OvsdbError):
    """A transaction was rejected; nothing of it was applied."""


class SwitchNotReady(InputError):
    """The switch cannot carry the VM as configured (DPDK off, wrong datapath, CPU overlap...)."""


class HostNotReady(InputError):
    """The host lacks what the VM needs (hugepages, CPUs...); the message says how to provide it."""


class CpuIncompatible(HypervisorError):
    """The destination's hypervisor cannot give the guest the CPU it runs with."""

    exit_code = 2


class MigrationFailed(HypervisorError):
    """A migration did not complete; the guest still runs on the source."""


class MigrationAborted(MigrationFailed):
    """A migration was aborted (Ctrl-C, --timeout, or abortJob from another client)."""


class DomainNotRunning(InputError):
    """The command needs a running domain (console, screenshot)."""


class NoDisplay(InputError):
    """The domain has no display to capture or no graphical console to open."""


class NoSerialConsole(InputError):
    """The domain has no serial console a stream can attach to."""


class ConsoleBusy(HypervisorError):
    """Another client holds the domain's console."""


class ViewerNotFound(InputError):
    """No graphical viewer (virt-viewer, virt-manager) is installed."""


class ViewerUnusable(InputError):
    """A viewer cannot show the console from here: no X display, or an address it cannot reach."""


class ViewerFailed(VirtnetError):
    """The viewer exited with an error."""


class ScreenshotError(VirtnetError):
    """A screenshot could not be taken or saved."""


class NoAgentChannel(InputError):
    """The domain has no guest agent channel (its spec says agent = false)."""


class AgentNotResponding(HypervisorError):
    """The guest agent channel exists but nothing answers on it (guest booting, agent not running)."""


class GuestCommandFailed(VirtnetError):
    """The guest agent could not start a command (no such program, not executable)."""

    exit_code = 127  # what a shell returns for a command it cannot run


class GuestCommandTimeout(VirtnetError):
    """A command run through the guest agent did not finish in time; it was killed."""

    exit_code = 124  # what timeout(1) returns


class GuestNotReady(VirtnetError):
    """`virtnet wait` gave up: the guest did not become ready in time, or cloud-init failed."""


class NoWayIn(InputError):
    """`virtnet ssh` finds no address of the guest this host can reach."""


class PerfFailed(VirtnetError):
    """A measurement could not be made: iperf3 or ping failed in the middle of it."""


class PathUnavailable(InputError):
    """The path asked for does not exist: a NIC without an address, no address in its subnet."""


class VmLocked(VirtnetError):
    """Another virtnet run holds the VM (virtnet/vmlock.py)."""
