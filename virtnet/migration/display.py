"""The migration's progress bar, fed by the job statistics the main thread polls.

It writes to stderr, so stdout carries only the report (and `--json` stays parseable).
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from virtnet.virt.migration import JobStats

MIB = 1024 * 1024


class ProgressBar:
    """A Watcher (see virtnet.control.migration) drawing one rich progress bar."""

    def __init__(self, name: str) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task = self._progress.add_task(f"migrating {name}", total=None, detail="preparing")
        self._shown = False

    def __enter__(self) -> ProgressBar:
        return self  # drawn from the first sample or note on: a refusal before prints only itself

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        if self._shown:
            self._progress.stop()

    def _show(self) -> None:
        if not self._shown:
            self._progress.start()
            self._shown = True

    def sample(self, stats: JobStats) -> None:
        self._show()
        total = int(stats.get("data_total", 0))
        remaining = int(stats.get("data_remaining", 0))
        self._progress.update(
            self._task, total=total / MIB, completed=(total - remaining) / MIB, detail=describe(stats)
        )

    def note(self, message: str) -> None:
        self._show()
        self._progress.console.print(f"virtnet: {message}")


def describe(stats: JobStats) -> str:
    """One line of job statistics: processed, remaining, memory pass, dirty rate, throughput."""
    page = int(stats.get("memory_page_size", 4096))
    dirty_mib_s = int(stats.get("memory_dirty_rate", 0)) * page / MIB
    parts = [
        f"{int(stats.get('data_processed', 0)) / MIB:.0f} MiB sent",
        f"{int(stats.get('data_remaining', 0)) / MIB:.0f} MiB left",
        f"pass {int(stats.get('memory_iteration', 0))}",
        f"dirty {dirty_mib_s:.0f} MiB/s",
        f"{int(stats.get('memory_bps', 0)) / MIB:.0f} MiB/s",
    ]
    if stats.get("auto_converge_throttle"):
        parts.append(f"throttle {stats['auto_converge_throttle']}%")
    return ", ".join(parts)
