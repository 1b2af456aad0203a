"""hello: print a greeting a few times, sleeping in between."""

from mirage.core.dsl import default, job, register, runtime_arg

hello = runtime_arg("hello", "str", default="Hello World!", doc="the greeting")
count = runtime_arg("count", "int", default=4, doc="how many times to greet")
delay = runtime_arg("delay-ms", "int", default=100, doc="milliseconds between greetings")

register(
    "hello",
    job(
        "unikernel:start",
        console=default("console"),
        sleep=default("sleep"),
        args=[hello, count, delay],
    ),
)
