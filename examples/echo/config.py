"""echo: a TCP echo server on the target's stack."""

from mirage.core.dsl import default, job, register, runtime_arg

port = runtime_arg("port", "int", default=7, doc="TCP port to listen on")

register(
    "echo",
    job("unikernel:start", stack=default("stack"), console=default("console"), args=[port]),
)
