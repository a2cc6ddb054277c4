"""Which migration to run: predict from the guest's dirty rate whether pre-copy converges.

Pre-copy sends all memory, then what was written meanwhile, again and again; each round takes
about `dirty / link` of the one before. Below 1 the rounds shrink until the rest fits in the
allowed downtime; at 1 or above they never do, which is why busy guests' migrations under Nova or
KubeVirt run forever with default flags. From that ratio:

- well below 1: pre-copy, or multifd channels when the link is not capped and the guest is big
  (one QEMU thread cannot fill a fast link); unless the guest is nearly idle, with auto-converge
  in reserve, because one short sample can miss a busy phase and it throttles only on a stall;
- approaching 1: pre-copy with auto-converge, which throttles the vCPUs only if rounds stop
  shrinking;
- 1 or above: post-copy, switched on after a couple of pre-copy rounds so most pages are already
  there, when it is safe; otherwise auto-converge, which always finishes but slows the guest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PolicyName = Literal["precopy", "multifd", "auto-converge", "postcopy"]
POLICIES: tuple[PolicyName, ...] = ("precopy", "multifd", "auto-converge", "postcopy")

CONVERGES_EASILY = 0.5  # below this share of the link, pre-copy needs few rounds
SAFETY_NET = 0.1  # from here on a low reading may be wrong: keep auto-converge in reserve
NEVER_CONVERGES = 0.9  # from here on (with measuring noise) the rounds stop shrinking
MULTIFD_MIN_MIB = 4096  # guests below this move quickly enough on one stream
MULTIFD_CHANNELS = 4
POSTCOPY_AFTER_ROUNDS = 2  # pre-copy rounds before the switch: most pages move without faults


@dataclass(frozen=True)
class Situation:
    """What the choice rests on."""

    dirty_mib_s: float
    link_mib_s: float
    link_capped: bool  # --bandwidth given: more channels do not make the link faster
    memory_mib: int
    postcopy_unsafe: str | None  # why post-copy would be unsafe here, None when it is safe


@dataclass(frozen=True)
class Choice:
    policy: PolicyName
    reason: str
    parallel: int | None = None
    auto_converge: bool = False
    postcopy_after: int | None = None  # pre-copy rounds before virDomainMigrateStartPostCopy


def choose(situation: Situation) -> Choice:
    s = situation
    ratio = s.dirty_mib_s / s.link_mib_s if s.link_mib_s > 0 else float("inf")
    measured = f"dirty rate {s.dirty_mib_s:.0f} MiB/s is {ratio:.0%} of the link's {s.link_mib_s:.0f} MiB/s"
    if ratio < CONVERGES_EASILY:
        # A 1 s sample can catch a busy guest in a quiet moment. Auto-converge throttles only when
        # the passes stop shrinking, so it costs a converging guest nothing: keep it as a net.
        net = ratio >= SAFETY_NET
        also = "; auto-converge only if the passes stop shrinking" if net else ""
        if not s.link_capped and s.memory_mib >= MULTIFD_MIN_MIB:
            return Choice(
                "multifd",
                f"{measured}: pre-copy converges; {MULTIFD_CHANNELS} multifd channels copy "
                f"{s.memory_mib} MiB faster than one stream{also}",
                parallel=MULTIFD_CHANNELS,
                auto_converge=net,
            )
        return Choice("precopy", f"{measured}: pre-copy converges in a few rounds{also}", auto_converge=net)
    if ratio < NEVER_CONVERGES:
        return Choice(
            "auto-converge",
            f"{measured}: pre-copy converges slowly, if at all; auto-converge throttles the vCPUs "
            "only if the rounds stop shrinking",
            auto_converge=True,
        )
    if s.postcopy_unsafe is None:
        return Choice(
            "postcopy",
            f"{measured}: pre-copy would never converge; post-copy after {POSTCOPY_AFTER_ROUNDS} "
            "pre-copy rounds moves the guest and fetches the rest on demand",
            postcopy_after=POSTCOPY_AFTER_ROUNDS,
        )
    return Choice(
        "auto-converge",
        f"{measured}: pre-copy would never converge and post-copy is unsafe ({s.postcopy_unsafe}); "
        "auto-converge throttles the vCPUs until it converges",
        auto_converge=True,
    )


def explicit(policy: PolicyName) -> Choice:
    """The settings of a policy the user named with --policy."""
    if policy == "multifd":
        return Choice(policy, "chosen with --policy", parallel=MULTIFD_CHANNELS)
    if policy == "auto-converge":
        return Choice(policy, "chosen with --policy", auto_converge=True)
    if policy == "postcopy":
        return Choice(policy, "chosen with --policy", postcopy_after=POSTCOPY_AFTER_ROUNDS)
    return Choice(policy, "chosen with --policy")
