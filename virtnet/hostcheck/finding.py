"""One line of `virtnet host check`: what was checked, the verdict, and the fix."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Finding:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        fix = f" -> fix: {self.fix}" if self.fix and self.status != "ok" else ""
        return f"{self.status.upper():<4} {self.name:<16} {self.detail}{fix}"

    def message(self) -> str:
        """As an error: the detail and the fix, one line."""
        return f"{self.detail}; {self.fix}" if self.fix else self.detail

    def as_dict(self) -> dict[str, str]:
        return asdict(self)
