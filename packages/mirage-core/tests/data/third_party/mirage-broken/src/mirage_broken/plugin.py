"""The plugin of mirage-broken: importing it fails, as if a dependency were missing.

Had it loaded, it would have provided the implementation ``broken_greeter``.
"""

raise ImportError("mirage-broken needs the library 'libgreet', which is not installed")
