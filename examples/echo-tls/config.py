"""echo-tls: the echo server, with TLS on every connection (mirage-tls over the stack)."""

from mirage.core.dsl import default, impl, job, register, runtime_arg

port = runtime_arg("port", "int", default=7, doc="TCP port to listen on")

register(
    "echo-tls",
    job(
        "unikernel:start",
        stack=impl("tls_stack", dist="mirage-tls"),
        console=default("console"),
        args=[port],
    ),
)
