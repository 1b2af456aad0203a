"""A project that needs the implementation of the plugin that fails to load."""

from mirage.core.dsl import impl, job, register

register("broken", job("unikernel:start", greeter=impl("broken_greeter", dist="mirage-broken")))
