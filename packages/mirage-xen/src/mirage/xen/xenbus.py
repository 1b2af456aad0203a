"""The xenbus handshake of split drivers (``xen/include/public/io/xenbus.h``).

Theory of operation. The toolstack (:func:`create_device`) writes two directories:
the frontend's ``/local/domain/<fe>/device/<kind>/<devid>`` (``backend``,
``backend-id``, ``state``) and the backend's
``/local/domain/<be>/backend/<kind>/<fe>/<devid>`` (``frontend``, ``frontend-id``,
``state``, ``online`` and the device's parameters), both in state Initialising.

The backend publishes what the frontend needs and moves to InitWait. The frontend
waits for InitWait, shares its ring, writes ``ring-ref`` and ``event-channel`` and
moves to Initialised. The backend maps the ring and moves to Connected; then the
frontend moves to Connected. To stop, either end moves to Closing and then Closed;
the other follows. A backend that finds the frontend misbehaving moves to Closed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .xenstore import AsyncClient, AsyncTransaction, Perm, XsError

__all__ = [
    "DevicePaths",
    "XenbusState",
    "create_device",
    "device_paths",
    "read_state",
    "wait_state",
    "write_state",
]


class XenbusState(enum.IntEnum):
    UNKNOWN = 0
    INITIALISING = 1
    INIT_WAIT = 2
    INITIALISED = 3
    CONNECTED = 4
    CLOSING = 5
    CLOSED = 6
    RECONFIGURING = 7
    RECONFIGURED = 8


@dataclass(frozen=True, slots=True)
class DevicePaths:
    """The xenstore directories and domain ids of a device's frontend and backend."""

    frontend: str
    backend: str
    frontend_id: int
    backend_id: int


def device_paths(kind: str, frontend_id: int, backend_id: int, devid: int) -> DevicePaths:
    return DevicePaths(
        f"/local/domain/{frontend_id}/device/{kind}/{devid}",
        f"/local/domain/{backend_id}/backend/{kind}/{frontend_id}/{devid}",
        frontend_id,
        backend_id,
    )


async def create_device(
    xs: AsyncClient,
    kind: str,
    frontend_id: int,
    backend_id: int,
    devid: int,
    *,
    params: dict[str, str] | None = None,
) -> DevicePaths:
    """What the toolstack does for a new device: both directories, in Initialising."""
    paths = device_paths(kind, frontend_id, backend_id, devid)
    init = str(int(XenbusState.INITIALISING))

    front = {"backend": paths.backend, "backend-id": str(backend_id), "state": init}
    back = {
        "frontend": paths.frontend,
        "frontend-id": str(frontend_id),
        "online": "1",
        **(params or {}),
        "state": init,
    }
    # Each end owns its directory and every node in it; the other end may read.
    front_acl = (Perm("n", frontend_id), Perm("r", backend_id))
    back_acl = (Perm("n", backend_id), Perm("r", frontend_id))

    async def write(t: AsyncTransaction) -> None:
        for directory, keys, acl in (
            (paths.frontend, front, front_acl),
            (paths.backend, back, back_acl),
        ):
            await t.mkdir(directory)
            await t.set_perms(directory, acl)
            for key, value in keys.items():
                await t.write(f"{directory}/{key}", value)
                await t.set_perms(f"{directory}/{key}", acl)

    await xs.transaction(write)
    return paths


async def read_state(xs: AsyncClient, directory: str) -> XenbusState:
    try:
        raw = await xs.read(f"{directory}/state")
        return XenbusState(int(raw))
    except (XsError, ValueError):
        return XenbusState.UNKNOWN


async def write_state(xs: AsyncClient, directory: str, state: XenbusState) -> None:
    await xs.write(f"{directory}/state", str(int(state)))


async def wait_state(xs: AsyncClient, directory: str, states: set[XenbusState]) -> XenbusState:
    """Wait until ``directory/state`` is one of ``states`` (a missing node is Closed)."""

    def ready(value: bytes | None) -> bool:
        return _parse(value) in states

    return _parse(await xs.wait_for(f"{directory}/state", ready))


def _parse(value: bytes | None) -> XenbusState:
    if value is None:
        return XenbusState.CLOSED
    try:
        return XenbusState(int(value))
    except ValueError:
        return XenbusState.UNKNOWN
