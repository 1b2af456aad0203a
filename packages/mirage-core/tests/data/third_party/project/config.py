"""greet: greets someone through the third-party greeter plugin (mirage-greeter)."""

from mirage.core.dsl import impl, job, register, runtime_arg

name = runtime_arg("name", "str", default="World", doc="who to greet")

register(
    "greet",
    job(
        "unikernel:start",
        greeter=impl("friendly_greeter", greeting="Bonjour", dist="mirage-greeter"),
        args=[name],
    ),
)
