"""mirage-greeter: the ``greeter`` module type and the ``friendly_greeter`` device."""
