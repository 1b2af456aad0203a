"""dns-server: an authoritative name server for the zone files under zones/.

On the unix target the zone files are read from zones/ at run time; ``mirage configure
--kv-ro crunch`` embeds them into the artifact instead. The server answers over UDP and
TCP on ``--port``.
"""

from mirage.core.dsl import default, job, register, runtime_arg
from mirage.kv.config import generic_kv_ro

port = runtime_arg("port", "int", default=53, doc="UDP and TCP port to answer on")

register(
    "dns-server",
    job(
        "unikernel:start",
        stack=default("stack"),
        console=default("console"),
        zones=generic_kv_ro("zones"),
        args=[port],
        requires=["mirage-dns>=0.1,<1"],
    ),
)
