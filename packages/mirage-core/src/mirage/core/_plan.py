"""The plan: a resolved configuration, written as JSON under ``mirage/`` by configure.

Devices are listed in dependency order (each after the devices it needs); a shared
device appears once. ``build``, ``run``, ``describe`` and ``query`` read the plan.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ._errors import MirageError
from ._model import RuntimeArg

__all__ = ["Plan", "PlanDevice", "PLAN_VERSION"]

PLAN_VERSION = 1


@dataclass
class PlanDevice:
    """A device or job of the plan, with its factory, parameters, needs and runtime arguments."""

    id: str
    impl: str | None  # None for a job
    module_type: str  # "job" for a job
    factory: str
    params: dict[str, Any]
    needs: dict[str, str]  # connect keyword -> device id
    runtime_args: list[dict[str, Any]]
    requires: list[str]
    build: str | None
    plugin: str
    dist: str
    where: str
    chosen_by: list[str] = field(default_factory=list)

    @property
    def is_job(self) -> bool:
        return self.impl is None

    def args(self) -> list[RuntimeArg]:
        from ._model import REQUIRED

        return [
            RuntimeArg(
                a["name"],
                a["type"],
                REQUIRED if a["required"] else a["default"],
                a["doc"],
                a["dest"],
            )
            for a in self.runtime_args
        ]


@dataclass
class Plan:
    """A resolved configuration: keys, devices in dependency order, jobs and requirements."""

    name: str
    target: str
    config: str
    keys: dict[str, Any]
    key_docs: dict[str, str]
    devices: list[PlanDevice]
    jobs: list[str]
    requires: list[str]
    configure_args: list[str] = field(default_factory=list)
    version: int = PLAN_VERSION

    def device(self, device_id: str) -> PlanDevice:
        for device in self.devices:
            if device.id == device_id:
                return device
        raise KeyError(device_id)

    def runtime_args(self) -> list[RuntimeArg]:
        """Every runtime argument of the surviving devices, each once."""
        seen: dict[str, RuntimeArg] = {}
        for device in self.devices:
            for arg in device.args():
                seen.setdefault(arg.name, arg)
        return list(seen.values())

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "plan") -> Plan:
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("version") != PLAN_VERSION:
                raise ValueError("unknown plan version")
            devices = [PlanDevice(**d) for d in data.pop("devices")]
            return cls(devices=devices, **data)
        except (ValueError, TypeError, KeyError) as exc:
            raise MirageError(
                f"the plan is unreadable ({exc})",
                where=source,
                hint="run 'mirage configure' again",
            ) from None

    @classmethod
    def load(cls, path: Path) -> Plan:
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise MirageError(
                "this project is not configured",
                where=str(path.parent.parent),
                hint="run 'mirage configure -t TARGET' first",
            ) from None
        return cls.from_json(text, str(path))
