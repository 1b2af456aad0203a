"""mirage-unix: the ``unix`` target, where a unikernel is a host process.

Devices: :class:`~mirage.unix.console.UnixConsole`, :class:`~mirage.unix.time.UnixSleep`,
:class:`~mirage.unix.time.UnixClock`, :class:`~mirage.unix.random.UnixRandom`,
:class:`~mirage.unix.stack.SocketStack` and :class:`~mirage.unix.resolver.HostResolver`.
Artifacts are zipapps (:mod:`mirage.unix._target`). Submodules are imported on their
own so that an artifact carries only the devices it uses.
"""

__all__: list[str] = []
