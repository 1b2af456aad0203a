"""mirage-vm: the ``virtio`` target, where a unikernel is a virtual machine.

A distribution kernel serves as the driver layer; the initramfs, written by
:mod:`mirage.vm._image`, holds a pruned CPython and the application, which runs as
PID 1 (:mod:`mirage.vm._init`). ``mirage run`` boots it under QEMU.
"""

__all__: list[str] = []
