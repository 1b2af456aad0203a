"""mirage-irmin beside git (the CLI) and dulwich, in the same run, with ratios.

Workloads (after the issue): a 1,000-key tree three levels deep with 100-byte values;
reading one key at the head; single-key commits; one commit of many files into a
pack; a log of 1,000 commits; merge-base of two 50-commit branches. Ratios are
``peer time / our time`` (above 1: we are faster). git runs as processes (``cat-file
--batch`` and ``fast-import`` keep one process for a whole series); dulwich runs in
this process. Usage: ``python bench_irmin.py [--large N] [--reads N] [--commits N]``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mirage.irmin import GitBackend, Info, Repo, Store

try:
    import dulwich.graph
    import dulwich.object_store
    import dulwich.objects
    import dulwich.repo
except ImportError:  # pragma: no cover
    dulwich = None  # type: ignore[assignment]

GIT = shutil.which("git")
ENV = {
    **os.environ,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
}
ROWS: list[tuple[str, str, float, dict[str, float | None]]] = []


def key(i: int) -> str:
    return f"d{i // 100}/e{i // 10 % 10}/k{i:05d}"


def value(i: int, round_: int = 0) -> bytes:
    return (b"%05d-%03d-" % (i, round_) * 10)[:100]


def git(*args: str, cwd: Path, input: bytes | None = None) -> bytes:
    assert GIT is not None
    return subprocess.run(
        [GIT, *args], cwd=cwd, input=input, env=ENV, check=True, capture_output=True
    ).stdout


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def row(name: str, unit: str, ours: float, peers: dict[str, float | None]) -> None:
    ROWS.append((name, unit, ours, peers))
    cells = []
    for peer, t in peers.items():
        cells.append(f"{peer} {t * 1e3:9.3f} ms (x{t / ours:5.2f})" if t else f"{peer} n/a")
    print(f"{name:<34} ours {ours * 1e3:9.3f} ms   " + "   ".join(cells), flush=True)


def fast_import_stream(
    commits: list[dict[str, bytes]], branch: str = "main", start: int = 0
) -> bytes:
    out = []
    for n, files in enumerate(commits):
        out.append(b"commit refs/heads/%s\n" % branch.encode())
        out.append(b"committer bench <bench@localhost> %d +0000\n" % (1_700_000_000 + start + n))
        out.append(b"data 1\nc\n")
        if n == 0 and start == 0:
            pass
        elif n == 0:
            out.append(b"from refs/heads/%s^0\n" % branch.encode())
        for path, data in files.items():
            out.append(b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data))
    return b"".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--large", type=int, default=100_000, help="files in the large commit")
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--commits", type=int, default=300)
    parser.add_argument(
        "--dulwich-large", action="store_true", help="also time dulwich's large commit"
    )
    args = parser.parse_args()
    if GIT is None:
        raise SystemExit("the bench needs the git command")
    tmp = Path(tempfile.mkdtemp(prefix="irmin-bench-"))
    try:
        run(tmp, args)
    finally:
        shutil.rmtree(tmp)


def run(tmp: Path, args: argparse.Namespace) -> None:
    keys = [key(i) for i in range(1000)]
    initial = {k: value(i) for i, k in enumerate(keys)}
    rng = random.Random(1)
    print(
        f"git {git('--version', cwd=tmp).decode().split()[-1]}, dulwich "
        f"{'.'.join(map(str, dulwich.__version__)) if dulwich else 'missing'}"
    )

    # -- the 1,000-key tree, one commit each ----------------------------------------
    ours_dir = tmp / "ours.git"
    store = Store(Repo(GitBackend.init(ours_dir)), "main")
    t_ours, _ = timed(lambda: store.batch(initial, Info(1_700_000_000, "initial")))
    git_dir = tmp / "git.git"
    git("init", "-q", "--bare", "-b", "main", str(git_dir), cwd=tmp)
    t_git, _ = timed(
        lambda: git("fast-import", "--quiet", cwd=git_dir, input=fast_import_stream([initial]))
    )
    t_dul = None
    if dulwich:
        dul = dulwich.repo.Repo.init_bare(str(tmp / "dul.git"), mkdir=True)
        t_dul, _ = timed(lambda: dulwich_commit(dul, None, initial, 1_700_000_000))
    row("commit 1000 files", "s", t_ours, {"git fast-import": t_git, "dulwich": t_dul})
    assert store.tree().hex() == git("rev-parse", "main^{tree}", cwd=git_dir).decode().strip()

    # -- read one key at the head --------------------------------------------------
    sample = [rng.choice(keys) for _ in range(args.reads)]
    reader = fresh(ours_dir)  # cold caches: every object is read from disk once
    t_ours, got = timed(lambda: [reader.get(k) for k in sample])
    assert got[0] == initial[sample[0]]
    batch = b"".join(b"main:%s\n" % k.encode() for k in sample)
    t_git, _ = timed(lambda: git("cat-file", "--batch", cwd=git_dir, input=batch))
    t_dul = None
    if dulwich:
        t_dul, _ = timed(lambda: [dulwich_read(dul, k) for k in sample])
    n = len(sample)
    row(
        "read 1 key at head (each)",
        "s",
        t_ours / n,
        {"git cat-file --batch": t_git / n, "dulwich": t_dul / n if t_dul else None},
    )

    # -- single-key commits ----------------------------------------------------------
    # Ours and dulwich alternate in rounds of 25 commits, so both see the same load
    # (other processes on the machine come and go within one run): the ratio is the
    # median of the rounds', beside the range.
    m = args.commits
    changes = [(rng.choice(keys), r) for r in range(m)]
    rounds = [changes[i : i + 25] for i in range(0, m, 25)]
    t_ours = 0.0
    t_dul = None
    ratios = []
    for part in rounds:
        t_part, _ = timed(
            lambda part=part: [
                store.set(k, value(0, r + 1), Info(1_700_000_001 + r)) for k, r in part
            ]
        )
        t_ours += t_part
        if dulwich:

            def dul_commits(part: list[tuple[str, int]] = part) -> None:
                for k, r in part:
                    dulwich_commit(
                        dul, dul.refs[b"refs/heads/main"], {k: value(0, r + 1)}, 1_700_000_001 + r
                    )

            t_d, _ = timed(dul_commits)
            t_dul = (t_dul or 0.0) + t_d
            ratios.append(t_d / t_part)
    stream = fast_import_stream([{k: value(0, r + 1)} for k, r in changes], start=1)
    t_git, _ = timed(lambda: git("fast-import", "--quiet", cwd=git_dir, input=stream))
    row(
        "single-key commit (per commit)",
        "s",
        t_ours / m,
        {"git fast-import": t_git / m, "dulwich": t_dul / m if t_dul else None},
    )
    if ratios:
        ratios.sort()
        print(
            f"  single-key commits, dulwich / ours by round of 25: median "
            f"{ratios[len(ratios) // 2]:.2f}, range {ratios[0]:.2f}-{ratios[-1]:.2f}"
        )
    assert store.tree().hex() == git("rev-parse", "main^{tree}", cwd=git_dir).decode().strip()

    # -- log of 1,000 commits ----------------------------------------------------------
    extra = max(0, 1000 - len(store.history()))
    store.batch({}, Info(1))  # no-op
    for r in range(extra):
        store.set("log/x", b"%d" % r, Info(1_700_100_000 + r))
    git(
        "fast-import",
        "--quiet",
        cwd=git_dir,
        input=fast_import_stream([{"log/x": b"%d" % r} for r in range(extra)], start=100_000),
    )
    cold = fresh(ours_dir)
    t_ours, hist = timed(cold.history)
    t_git, out = timed(lambda: git("log", "--format=%H", "main", cwd=git_dir))
    assert len(hist) == len(out.split())
    t_dul = None
    if dulwich:
        for r in range(extra):
            dulwich_commit(
                dul, dul.refs[b"refs/heads/main"], {"log/x": b"%d" % r}, 1_700_100_000 + r
            )
        t_dul, _ = timed(
            lambda: [e.commit.id for e in dul.get_walker(include=[dul.refs[b"refs/heads/main"]])]
        )
    row(f"log of {len(hist)} commits (cold)", "s", t_ours, {"git log": t_git, "dulwich": t_dul})

    # -- merge-base of two 50-commit branches -------------------------------------------
    base = store.head()
    assert base is not None
    other = store.clone("other")
    for r in range(50):
        store.set(f"mb/a{r}", b"a", Info(1_700_200_000 + r))
        other.set(f"mb/b{r}", b"b", Info(1_700_200_000 + r))
    ha, hb = store.head(), other.head()
    assert ha and hb
    cold = fresh(ours_dir)
    t_ours, lcas = timed(lambda: cold.repo.lcas(ha, hb))
    t_git, out = timed(lambda: git("merge-base", ha.hex(), hb.hex(), cwd=ours_dir))
    assert [c.hex() for c in lcas] == out.decode().split()
    t_dul = None
    if dulwich:
        dours = dulwich.repo.Repo(str(ours_dir))
        t_dul, res = timed(
            lambda: dulwich.graph.find_merge_base(dours, [ha.hex().encode(), hb.hex().encode()])
        )
        assert res == [base.hex().encode()]
    row(
        "merge-base 2 x 50 commits (cold)", "s", t_ours, {"git merge-base": t_git, "dulwich": t_dul}
    )

    # -- one commit of many files into a pack ---------------------------------------------
    big = {f"b{i // 1000:03d}/c{i // 100 % 10}/f{i:06d}": value(i) for i in range(args.large)}
    big_store = Store(Repo(GitBackend.init(tmp / "big.git")), "main")
    t_ours, _ = timed(lambda: big_store.set_tree("", nest(big), Info(1_700_000_000, "big")))
    git("init", "-q", "--bare", "-b", "main", "bigg.git", cwd=tmp)
    stream = fast_import_stream([big])
    t_git, _ = timed(lambda: git("fast-import", "--quiet", cwd=tmp / "bigg.git", input=stream))
    assert (
        big_store.tree().hex()
        == git("rev-parse", "main^{tree}", cwd=tmp / "bigg.git").decode().strip()
    )
    t_dul = None
    if dulwich and args.dulwich_large:
        dbig = dulwich.repo.Repo.init_bare(str(tmp / "dbig.git"), mkdir=True)
        t_dul, _ = timed(lambda: dulwich_commit(dbig, None, big, 1_700_000_000))
    row(
        f"commit {args.large} files (pack)",
        "s",
        t_ours,
        {"git fast-import": t_git, "dulwich": t_dul},
    )
    git("fsck", "--strict", "--no-dangling", cwd=tmp / "big.git")
    git("fsck", "--strict", "--no-dangling", cwd=ours_dir)


def fresh(path: Path) -> Store:
    """A store over the repository with nothing cached."""
    return Store(Repo(GitBackend(path)), "main")


def nest(flat: dict[str, bytes]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path, data in flat.items():
        *dirs, name = path.split("/")
        node = root
        for d in dirs:
            node = node.setdefault(d, {})
        node[name] = data
    return root


# -- dulwich, used the way its documentation shows ----------------------------------------


def dulwich_read(repo: Any, path: str) -> bytes:
    commit = repo[repo.refs[b"refs/heads/main"]]
    _, sha = dulwich.object_store.tree_lookup_path(repo.__getitem__, commit.tree, path.encode())
    data: bytes = repo[sha].data
    return data


def dulwich_commit(repo: Any, parent: bytes | None, files: dict[str, bytes], when: int) -> bytes:
    """Write ``files`` over the parent's tree (only the trees on the changed paths)."""
    store = repo.object_store
    root = store[repo[parent].tree] if parent else dulwich.objects.Tree()
    nested = nest(files)

    def write(tree: Any, node: dict[str, Any]) -> bytes:
        for name, item in node.items():
            bname = name.encode()
            if isinstance(item, bytes):
                blob = dulwich.objects.Blob.from_string(item)
                store.add_object(blob)
                tree.add(bname, 0o100644, blob.id)
            else:
                sub = store[tree[bname][1]] if bname in tree else dulwich.objects.Tree()
                tree.add(bname, 0o040000, write(sub, item))
        store.add_object(tree)
        tid: bytes = tree.id
        return tid

    c = dulwich.objects.Commit()
    c.tree = write(root.copy() if parent else root, nested)
    c.parents = [parent] if parent else []
    c.author = c.committer = b"bench <bench@localhost>"
    c.author_time = c.commit_time = when
    c.author_timezone = c.commit_timezone = 0
    c.message = b"c\n"
    store.add_object(c)
    repo.refs[b"refs/heads/main"] = c.id
    cid: bytes = c.id
    return cid


if __name__ == "__main__":
    main()
