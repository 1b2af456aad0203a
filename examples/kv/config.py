"""kv: list and print the contents of a key-value store.

By default the store is ``htdocs/`` crunched into the artifact; ``--kv-ro directory``
reads the directory at run time instead.
"""

from mirage.core.dsl import default, job, register
from mirage.kv.config import generic_kv_ro

register(
    "kv",
    job("unikernel:start", console=default("console"), store=generic_kv_ro("htdocs")),
)
