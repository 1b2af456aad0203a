"""static-website: serve htdocs/ over HTTP on the target's stack.

The files are crunched into the artifact (the default: the artifact carries the site
and needs no directory beside it), or read from the directory at run time with
``--kv-ro directory`` (handy while editing the site).
"""

from mirage.core.dsl import default, job, register, runtime_arg
from mirage.kv.config import generic_kv_ro

port = runtime_arg("port", "int", default=8080, doc="TCP port to serve HTTP on")

register(
    "www",
    job(
        "unikernel:start",
        stack=default("stack"),
        console=default("console"),
        htdocs=generic_kv_ro("htdocs", default="crunch"),
        args=[port],
        requires=["mirage-http>=0.1,<1"],
    ),
)
