"""Steering a migration mid-flight (virtnet/migration/steering.py), fed job statistics by hand.

A pass is one `memory_iteration`; the first sample of a pass says how much memory it starts with.
The jobs themselves run in tests/e2e/test_migration_steering.py.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from virtnet.control import migration as run_module
from virtnet.errors import HypervisorError
from virtnet.migration.plan import Plan
from virtnet.migration.policy import Choice
from virtnet.migration.steering import STALL_PASSES, Ladder, Steering
from virtnet.virt.migration import MigrationOptions

MIB = 1024 * 1024


def sample(memory_pass: int, left_mib: float, *, mib_s: float = 100, throttle: int = 0) -> dict[str, int]:
    return {
        "memory_iteration": memory_pass,
        "memory_remaining": int(left_mib * MIB),
        "data_remaining": int(left_mib * MIB),
        "memory_bps": int(mib_s * MIB),
        "auto_converge_throttle": throttle,
    }


def feed(steering: Steering, lefts: list[float], **kw: float) -> list[str]:
    """One sample per pass, passes 1, 2, ...; the actions returned, in order."""
    actions = []
    for index, left in enumerate(lefts, start=1):
        step = steering.observe(sample(index, left, **kw), float(index))  # type: ignore[arg-type]
        if step is not None:
            actions.append(step.action)
    return actions


def ladder(**kw: object) -> Ladder:
    values: dict[str, object] = {"downtime_ms": 300, "ceiling_ms": 1000, "throttle": False, "postcopy": True}
    values.update(kw)
    return Ladder(**values)  # type: ignore[arg-type]


def test_a_converging_guest_is_never_touched() -> None:
    steering = Steering(ladder(throttle=True))
    assert feed(steering, [1024, 200, 120, 70, 40, 20, 10]) == []
    assert steering.steps == []
    assert steering.downtime_ms == 300


def test_a_pass_that_shrinks_a_little_is_still_a_stall() -> None:
    # 5% less each pass: pre-copy would take forever.
    steering = Steering(ladder(ceiling_ms=300))
    lefts = [1024.0, 256.0]
    for _ in range(STALL_PASSES):
        lefts.append(lefts[-1] * 0.95)
    assert feed(steering, lefts) == ["postcopy"]


def test_the_first_rung_raises_the_allowed_downtime_when_the_rest_would_fit() -> None:
    # 60 MiB left at 100 MiB/s: ~600 ms, more than 300 ms allowed, less than the 1000 ms ceiling.
    steering = Steering(ladder())
    assert feed(steering, [1024, 60, 60, 60]) == ["downtime"]
    (step,) = steering.steps
    assert step.downtime_ms == steering.downtime_ms == 750  # 600 ms with a 25% margin, above 2 x 300
    assert "300 -> 750 ms" in step.reason and "needs ~600 ms at 100 MiB/s" in step.reason
    assert "2 passes did not shrink" in step.reason


def test_downtime_rises_in_steps_up_to_the_ceiling_then_the_next_rung() -> None:
    steering = Steering(ladder(downtime_ms=100, ceiling_ms=500, throttle=False, postcopy=True))
    # 30 MiB at 100 MiB/s: 300 ms; steps 100 -> 375 -> 500 (the ceiling), then post-copy.
    assert feed(steering, [1024] + [30] * 7) == ["downtime", "downtime", "postcopy"]
    assert [s.downtime_ms for s in steering.steps] == [375, 500, None]
    assert steering.downtime_ms == 500


def test_the_ramp_is_skipped_when_the_rest_cannot_fit_under_the_ceiling() -> None:
    # 256 MiB at 100 MiB/s needs ~2.6 s: raising the downtime cannot help.
    steering = Steering(ladder())
    assert feed(steering, [1024, 256, 256, 256]) == ["postcopy"]
    skipped, switched = steering.steps
    assert skipped.action == "none" and "beyond the ceiling of 1000 ms" in skipped.reason
    assert steering.downtime_ms == 300
    assert switched.action == "postcopy" and "post-copy" in switched.reason


def test_the_throttle_comes_before_post_copy_and_gets_its_passes() -> None:
    steering = Steering(ladder(throttle=True))
    assert feed(steering, [1024, 256, 256, 256, 256]) == ["throttle"]
    assert feed(steering, [1024, 256, 256, 256, 256, 256, 256]) == ["postcopy"]
    assert [s.action for s in steering.steps] == ["none", "throttle", "postcopy"]


def test_without_post_copy_the_report_says_nothing_is_left() -> None:
    steering = Steering(ladder(postcopy=False))
    assert feed(steering, [1024, 256, 256, 256, 256, 256]) == []
    last = steering.steps[-1]
    assert last.action == "none" and "post-copy is not armed" in last.reason


def test_qemus_own_throttle_is_reported_when_it_begins() -> None:
    steering = Steering(ladder(throttle=True))
    steering.observe(sample(3, 200, throttle=20), 4.0)
    steering.observe(sample(4, 190, throttle=30), 5.0)
    (step,) = steering.steps
    assert step.action == "throttle" and "at 20%" in step.reason and step.memory_pass == 3


def test_samples_within_a_pass_count_once() -> None:
    steering = Steering(ladder(ceiling_ms=300))
    for left in (256, 250, 240):
        steering.observe(sample(2, left), 1.0)
    for left in (256, 200):
        assert steering.observe(sample(3, left), 2.0) is None  # one stalled pass, not two
    assert steering.observe(sample(4, 256), 3.0) is not None


def test_a_switch_made_elsewhere_ends_the_ladder() -> None:
    steering = Steering(ladder())
    step = steering.done("postcopy", "after 2 pre-copy rounds", 3.0)
    assert steering.steps == [step]
    assert feed(steering, [1024, 256, 256, 256, 256]) == []


# --- Ctrl-C during the job, and again during the abort ---------------------------------------------


class SlowAbortJob:
    """A job that runs until aborted, then takes a while to wind down, as libvirt's does.

    The user's Ctrl-Cs come from the job itself, at the moments they are about (the job running; the
    aborted job winding down), not from timers started before the job: on a loaded machine a timer
    can fire before the job runs, or both presses can land before the abort.
    """

    SETTLE_S = 0.2  # the main thread is in its polling loop well before this

    def __init__(self, *, second_press: bool = False) -> None:
        self.aborted = threading.Event()
        self.second_press = second_press
        self.guest = None

    def max_downtime_ms(self) -> int:
        return 300

    def run(self, *_args: object, **_kw: object) -> None:
        time.sleep(self.SETTLE_S)
        os.kill(os.getpid(), signal.SIGINT)  # this thread blocks SIGINT: it reaches the main thread
        self.aborted.wait(30)
        if self.second_press:
            time.sleep(self.SETTLE_S)  # the main thread is waiting for the job's end by now
            os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1.0)
        raise HypervisorError("operation aborted: migration out job: canceled by client")

    def stats(self) -> None:
        return None

    def abort(self) -> None:
        self.aborted.set()


class Notes:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def sample(self, stats: object) -> None:
        pass

    def note(self, message: str) -> None:
        self.lines.append(message)


def test_a_second_ctrl_c_during_the_abort_only_says_it_is_in_progress() -> None:
    job, notes = SlowAbortJob(second_press=True), Notes()
    plan = Plan(choice=Choice("precopy", "chosen with --policy"), options=MigrationOptions())
    result = run_module._run_job(job, None, "test:///b", plan, "<d/>", "<d/>", notes)  # type: ignore[arg-type]
    assert job.aborted.is_set() and result.stopped_by == "interrupt"
    assert isinstance(result.error, HypervisorError)  # the job ended: it was waited for
    assert notes.lines[0] == "interrupted: asking libvirt to abort the migration job"
    assert notes.lines[1].startswith("the abort is in progress: waiting for libvirt to end the job")


class BlockingAbortJob(SlowAbortJob):
    """libvirt's abortJob blocks while the job winds down; the user presses Ctrl-C again meanwhile."""

    def run(self, *_args: object, **_kw: object) -> None:
        time.sleep(self.SETTLE_S)
        os.kill(os.getpid(), signal.SIGINT)
        self.aborted.wait(30)
        time.sleep(self.SETTLE_S)  # the main thread is still inside abort() below
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1.0)
        raise HypervisorError("operation aborted: migration out job: canceled by client")

    def abort(self) -> None:
        self.aborted.set()
        time.sleep(3 * self.SETTLE_S)


def test_a_second_ctrl_c_while_the_abort_call_blocks_is_answered_too() -> None:
    job, notes = BlockingAbortJob(), Notes()
    plan = Plan(choice=Choice("precopy", "chosen with --policy"), options=MigrationOptions())
    result = run_module._run_job(job, None, "test:///b", plan, "<d/>", "<d/>", notes)  # type: ignore[arg-type]
    assert result.stopped_by == "interrupt" and isinstance(result.error, HypervisorError)
    assert notes.lines[1].startswith("the abort is in progress: waiting for libvirt to end the job")


class EarlyAbortRefusedJob(SlowAbortJob):
    """libvirt refuses the first abort (early in the job) and the job runs on as if never asked; only
    a later abort ends it."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0

    def abort(self) -> None:
        self.asked += 1
        if self.asked == 1:
            raise HypervisorError("Requested operation is not valid: no job is active on the domain")
        self.aborted.set()


def test_an_abort_libvirt_refused_early_is_asked_again_until_the_job_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(run_module, "ABORT_RETRY_S", 0.2)
    job, notes = EarlyAbortRefusedJob(), Notes()
    plan = Plan(choice=Choice("precopy", "chosen with --policy"), options=MigrationOptions())
    result = run_module._run_job(job, None, "test:///b", plan, "<d/>", "<d/>", notes)  # type: ignore[arg-type]
    assert job.asked >= 2 and job.aborted.is_set()  # asked again (and again while it winds down)
    assert result.stopped_by == "interrupt" and isinstance(result.error, HypervisorError)
    refusals = [line for line in notes.lines if line.startswith("libvirt refused the abort")]
    assert refusals == [
        "libvirt refused the abort (Requested operation is not valid: no job is active on the domain); "
        "asking again every 0.2 s"
    ]
