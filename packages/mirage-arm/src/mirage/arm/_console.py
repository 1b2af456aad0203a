"""The guest console as ``mirage run`` shows it: mirage-vm's streamer, shared by every
hypervisor target (:mod:`mirage.vm._console`), with Xen on ARM's guest prefix."""

from __future__ import annotations

from mirage.vm.images import MARKER, ConsoleFilter, Seen, stream

__all__ = ["MARKER", "ConsoleFilter", "Seen", "stream"]
