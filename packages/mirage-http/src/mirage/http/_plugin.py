"""mirage-http's plugin: it registers nothing.

HTTP is a library that ``unikernel.py`` calls on the devices it is given (a stack, a
key-value store); it is not a device that configuration chooses. The entry point is
there so that ``mirage plugins`` lists the package, and so that a later device (an
HTTP client device, say) has a home.
"""

from __future__ import annotations
