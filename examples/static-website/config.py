"""static-website: serve htdocs/ over HTTP on the target's stack, and over HTTPS too
when a certificate is given at run time.

The files are crunched into the artifact (the default: the artifact carries the site
and needs no directory beside it), or read from the directory at run time with
``--kv-ro directory`` (handy while editing the site). ``--tls-cert`` and
``--tls-key`` (PEM chain and key) turn on HTTPS on ``--tls-port``, with ALPN for
HTTP/2 and HTTP/1.1; without them the site is served over plain HTTP only.
"""

from mirage.core.dsl import default, job, register, runtime_arg
from mirage.kv.config import generic_kv_ro

port = runtime_arg("port", "int", default=8080, doc="TCP port to serve HTTP on")
tls_port = runtime_arg("tls-port", "int", default=8443, doc="TCP port to serve HTTPS on")
tls_cert = runtime_arg(
    "tls-cert", "path", default=None, doc="PEM certificate chain for HTTPS (off if not given)"
)
tls_key = runtime_arg("tls-key", "path", default=None, doc="PEM private key for HTTPS")

register(
    "www",
    job(
        "unikernel:start",
        stack=default("stack"),
        console=default("console"),
        htdocs=generic_kv_ro("htdocs", default="crunch"),
        args=[port, tls_port, tls_cert, tls_key],
        requires=["mirage-http>=0.1,<1", "mirage-tls>=0.1,<1"],
    ),
)
