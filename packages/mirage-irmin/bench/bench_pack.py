"""The pack backend (directories as inodes) beside git, in the same run, with ratios.

Workload: one directory of N entries (100,000 by default), written in one commit;
then single-entry changes to it. git stores the directory as one tree object, so a
change rewrites it whole (``git fast-import``, one process for the series); the
pack backend (:class:`PackBackend` under :class:`Store`) stores it as an inode of
chunks and appends a chunk or two and the inode. Our Git backend is timed too, as a third
column. Ratios are ``peer time / our time`` (above 1: we are faster).
Usage: ``python bench_pack.py [--entries N] [--changes N]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench_irmin import GIT, git, row

from mirage.irmin import GitBackend, Info, PackBackend, Repo, Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=5)
    args = parser.parse_args()
    if GIT is None:
        print("git is missing: nothing to compare with")
        return
    with tempfile.TemporaryDirectory(prefix="bench-pack-") as tmp:
        run(Path(tmp), args.entries, args.changes)


def stream(files: dict[str, bytes], mark: int, start: int, first: bool) -> bytes:
    out = [b"commit refs/heads/main\n", b"committer b <b@l> %d +0000\n" % start, b"data 0\n"]
    if not first:
        out.append(b"from refs/heads/main^0\n")
    for path, data in files.items():
        out.append(b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data))
    out.append(b"\n")
    return b"".join(out)


def run(tmp: Path, n: int, changes: int) -> None:
    values = {f"entry-{i}": b"%d" % i for i in range(n)}

    backend = PackBackend(tmp / "pack")
    store = Store(Repo(backend), "main")
    start = time.perf_counter()
    store.set_tree("big", values, Info(1))
    t_ours = time.perf_counter() - start

    # the Git repository is written by our Git backend: git fast-import is quadratic
    # in the size of one directory (over 20 s for 100,000 entries), so it is timed on
    # small directories only
    git_dir = tmp / "git.git"
    gstore = Store(Repo(GitBackend.init(git_dir)), "main")
    start = time.perf_counter()
    gstore.set_tree("big", values, Info(1))
    t_gitbackend = time.perf_counter() - start
    t_git = None
    if n <= 20_000:
        fi_dir = tmp / "fi.git"
        git("init", "-q", "--bare", "-b", "main", str(fi_dir), cwd=tmp)
        data = stream({f"big/{k}": v for k, v in values.items()}, 0, 1, True)
        start = time.perf_counter()
        git("fast-import", "--quiet", cwd=fi_dir, input=data)
        t_git = time.perf_counter() - start
    row(
        f"write a {n}-entry directory",
        "s",
        t_ours,
        {"our Git backend": t_gitbackend, "git fast-import": t_git},
    )

    # single-entry changes: ours (pack), git fast-import, ours (Git backend)
    size = (tmp / "pack" / "objects.pack").stat().st_size
    start = time.perf_counter()
    for i in range(changes):
        store.set(f"big/entry-{i}", b"changed %d" % i, Info(2 + i))
    t_ours = (time.perf_counter() - start) / changes
    grown = ((tmp / "pack" / "objects.pack").stat().st_size - size) // changes
    series = b"".join(
        stream({f"big/entry-{i}": b"changed %d" % i}, 0, 2 + i, False) for i in range(changes)
    )
    start = time.perf_counter()
    git("fast-import", "--quiet", cwd=git_dir, input=series)
    t_git = (time.perf_counter() - start) / changes
    gstore = Store(Repo(GitBackend(git_dir)), "main")  # cold, as git is
    start = time.perf_counter()
    for i in range(min(changes, 3)):
        gstore.set(f"big/entry-{i}", b"again %d" % i, Info(100 + i))
    t_gitbackend = (time.perf_counter() - start) / min(changes, 3)
    row(
        "change 1 entry (per commit)",
        "s",
        t_ours,
        {"git fast-import": t_git, "our Git backend": t_gitbackend},
    )
    print(f"bytes appended by a one-entry change: {grown}")
    backend.close()
    start = time.perf_counter()
    cold = PackBackend(tmp / "pack")
    print(f"open (persistent index, no scan): {(time.perf_counter() - start) * 1000:.2f} ms")
    cstore = Store(Repo(cold), "main")
    start = time.perf_counter()
    got = [cstore.get(f"big/entry-{i}") for i in range(changes, changes + 1000)]
    t_ours = (time.perf_counter() - start) / len(got)
    n_git = 100  # each lookup parses the whole directory's tree: slow for git
    batch = b"".join(b"main:big/entry-%d\n" % i for i in range(changes, changes + n_git))
    start = time.perf_counter()
    git("cat-file", "--batch", cwd=git_dir, input=batch)
    t_git = (time.perf_counter() - start) / n_git
    row("read 1 entry, cold open (each)", "s", t_ours, {"git cat-file --batch": t_git})
    cold.close()


if __name__ == "__main__":
    main()
