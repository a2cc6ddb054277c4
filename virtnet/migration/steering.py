"""Steering a running migration: watch each memory pass and escalate when the passes stop shrinking.

The policy is chosen from one short sample of the dirty rate before the job; a guest can get busier
after it. So while the job runs, each pass is watched (libvirt's job statistics: the memory left to
send when QEMU starts a pass). While the passes shrink nothing is touched: a converging guest is
never slowed. When the memory left stops shrinking for STALL_PASSES passes in a row, the next rung of
a ladder is taken, each recorded with its reason for the report:

1. the allowed downtime, raised in steps up to a ceiling the user sets (--max-downtime-ceiling),
   when what is left would fit in it at the link's pace: it costs the guest one longer pause at the
   end, and nothing before;
2. the vCPU throttle: QEMU's auto-converge, when the plan armed it (libvirt has no way to switch it
   on once the job runs, and QEMU throttles on its own when a pass dirties more than half of what it
   sends, which may come before rung 1);
3. post-copy, when the plan armed it (it is safe for this guest): the guest runs on the destination
   at once and fetches the rest on demand.

Each rung gets STALL_PASSES passes to work before the next. This module only decides; the job's
runner (run.py) carries the actions out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from virtnet.virt.migration import JobStats

STALL_PASSES = 2  # passes in a row that did not shrink before a rung is taken
SHRINK = 0.9  # a pass "shrinks" when it starts with less than this share of the smallest before it
DOWNTIME_MARGIN = 1.25  # raise the allowed downtime to this much of what the rest needs
QEMU_DEFAULT_DOWNTIME_MS = 300  # QEMU's downtime-limit when nobody sets it
DEFAULT_CEILING_MS = 1000
MIB = 1024 * 1024

Action = Literal["downtime", "throttle", "postcopy", "none"]


@dataclass(frozen=True)
class Ladder:
    """What steering may do for this job, fixed when it starts."""

    downtime_ms: int  # the allowed downtime at the start
    ceiling_ms: int  # steering never raises it above this
    throttle: bool  # auto-converge is armed (VIR_MIGRATE_AUTO_CONVERGE)
    postcopy: bool  # post-copy is armed (VIR_MIGRATE_POSTCOPY) and safe for the guest


@dataclass(frozen=True)
class Step:
    """One escalation, as the report lists it."""

    at_s: float  # seconds into the job
    memory_pass: int
    action: Action
    reason: str
    downtime_ms: int | None = None  # the new allowed downtime (action "downtime")

    def line(self) -> str:
        return f"{self.at_s:.1f} s, pass {self.memory_pass}: {self.action}: {self.reason}"


@dataclass
class Steering:
    """Fed each job-statistics sample; says what to do when the passes stop shrinking."""

    ladder: Ladder
    steps: list[Step] = field(default_factory=list)
    downtime_ms: int = 0
    _pass: int = 0
    _smallest: int | None = None  # the least memory left at the start of any pass so far
    _stalled: int = 0
    _rung: int = 0  # 0 downtime, 1 throttle, 2 post-copy, 3 nothing left
    _throttle_seen: bool = False

    def __post_init__(self) -> None:
        self.downtime_ms = self.ladder.downtime_ms

    def observe(self, stats: JobStats, elapsed_s: float) -> Step | None:
        """The step to take now, or None; a step is recorded only once it is returned."""
        self._note_throttle(stats, elapsed_s)
        memory_pass = int(stats.get("memory_iteration", 0))
        left = stats.get("memory_remaining", stats.get("data_remaining"))
        if memory_pass <= self._pass or left is None:
            return None
        # The first sample of a new pass: what it has to send (less what it sent since it began).
        self._pass = memory_pass
        left = int(left)
        if memory_pass < 2 or self._smallest is None:  # pass 1 sends all memory: nothing to compare
            self._smallest = left if memory_pass >= 2 else None
            return None
        if left < self._smallest * SHRINK:
            self._smallest = left
            self._stalled = 0
            return None
        self._smallest = min(self._smallest, left)
        self._stalled += 1
        if self._stalled < STALL_PASSES:
            return None
        self._stalled = 0  # the rung taken now gets STALL_PASSES passes of its own
        return self._escalate(stats, left, memory_pass, elapsed_s)

    def done(self, action: Action, reason: str, elapsed_s: float) -> Step:
        """Record a step taken outside the ladder (--postcopy-after, --on-timeout postcopy)."""
        step = Step(round(elapsed_s, 1), self._pass, action, reason)
        self.steps.append(step)
        if action == "postcopy":
            self._rung = 3
        return step

    def _escalate(self, stats: JobStats, left: int, memory_pass: int, elapsed_s: float) -> Step | None:
        """The next rung that applies, recorded; None when no rung is left."""
        stalled = (
            f"{STALL_PASSES} passes did not shrink (pass {memory_pass} starts with {left / MIB:.0f} MiB "
            f"left, the smallest so far {(self._smallest or 0) / MIB:.0f} MiB)"
        )
        at = round(elapsed_s, 1)
        if self._rung == 0:
            step = self._downtime(stats, left, stalled, memory_pass, at)
            if step is not None:
                self.steps.append(step)
                if step.action == "downtime":
                    return step  # more downtime steps may follow, up to the ceiling
            self._rung = 1
        if self._rung == 1:
            self._rung = 2
            if self.ladder.throttle:
                percent = int(stats.get("auto_converge_throttle", 0) or 0)
                now = f"at {percent}% now" if percent else "not yet"
                step = Step(
                    at,
                    memory_pass,
                    "throttle",
                    f"{stalled}; auto-converge, armed at the start, throttles the vCPUs ({now}) and "
                    f"more with each pass that does not shrink: it gets {STALL_PASSES} passes",
                )
                self.steps.append(step)
                return step
        if self._rung == 2:
            self._rung = 3
            if self.ladder.postcopy:
                step = Step(
                    at,
                    memory_pass,
                    "postcopy",
                    f"{stalled}; switching to post-copy: the guest runs on the destination now and "
                    "fetches the rest on demand",
                )
                self.steps.append(step)
                return step
            left_over = "QEMU's throttle, which rises with each pass" if self.ladder.throttle else "nothing"
            why = f"{stalled}; post-copy is not armed for this job: {left_over} is left"
            self.steps.append(Step(at, memory_pass, "none", why))
        return None

    def _downtime(
        self, stats: JobStats, left: int, stalled: str, memory_pass: int, elapsed_s: float
    ) -> Step | None:
        # A step with action "none" says why the ramp was skipped; None: there is no ramp to take.
        """Raise the allowed downtime when the rest would fit under the ceiling; else say why not."""
        ceiling = self.ladder.ceiling_ms
        if self.downtime_ms >= ceiling:
            return None  # the ramp is over (or there was none): the next rung
        pace = float(stats.get("memory_bps") or 0)
        if pace <= 0:
            return None
        needed = math.ceil(left / pace * 1000)
        if needed > ceiling:
            return Step(
                elapsed_s,
                memory_pass,
                "none",
                f"{stalled}; the allowed downtime stays {self.downtime_ms} ms: the rest needs ~{needed} ms "
                f"at {pace / MIB:.0f} MiB/s, beyond the ceiling of {ceiling} ms (--max-downtime-ceiling)",
            )
        new = min(ceiling, max(self.downtime_ms * 2, math.ceil(needed * DOWNTIME_MARGIN)))
        step = Step(
            elapsed_s,
            memory_pass,
            "downtime",
            f"{stalled}; allowed downtime {self.downtime_ms} -> {new} ms: the rest needs ~{needed} ms at "
            f"{pace / MIB:.0f} MiB/s (ceiling {ceiling} ms)",
            downtime_ms=new,
        )
        self.downtime_ms = new
        return step

    def _note_throttle(self, stats: JobStats, elapsed_s: float) -> None:
        """QEMU's auto-converge slows the guest on its own: the report says when it began."""
        percent = int(stats.get("auto_converge_throttle", 0) or 0)
        if percent and not self._throttle_seen:
            self._throttle_seen = True
            if not any(step.action == "throttle" for step in self.steps):
                self.steps.append(
                    Step(
                        round(elapsed_s, 1),
                        int(stats.get("memory_iteration", 0)),
                        "throttle",
                        f"QEMU's auto-converge began throttling the vCPUs at {percent}%: a pass dirtied "
                        "more than half of what it sent, twice in a row",
                    )
                )
