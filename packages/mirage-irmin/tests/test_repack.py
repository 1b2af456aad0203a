"""Repacking (``irmin gc``): one pack with deltas for history, that ``git
verify-pack`` and ``git fsck`` accept, smaller, losing nothing."""

from __future__ import annotations

from pathlib import Path

from conftest import git, needs_git
from test_cli import run

from mirage.irmin import GitBackend, Info, ObjectType, Repo, Store, repack


def _sizes(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / "objects").rglob("*") if p.is_file())


@needs_git
def test_repack_writes_deltas_git_accepts(tmp_path: Path) -> None:
    root = tmp_path / "r.git"
    store = Store(Repo(GitBackend.init(root)))
    text = b"".join(b"line %d of a long document\n" % i for i in range(400))
    for i in range(60):  # many versions of one file: deltas pay
        store.set("doc.txt", text + b"edit %d\n" % i, Info(date=i))
        store.set(f"notes/n{i % 5}", b"note %d\n" % i * 20, Info(date=i))
    dev = store.clone("dev")
    dev.set("only-on-dev", b"x", Info(date=100))
    git("tag", "v1", "main~10", cwd=root)
    unreachable = Repo(store.repo.backend).write_blob(b"an object no ref reaches\n")
    store.repo.backend.write(ObjectType.BLOB, b"a loose object\n")
    before = _sizes(root)
    heads = {b: Store(store.repo, b).head() for b in ("main", "dev")}
    log = git("log", "--all", "--format=%H %T", cwd=root)

    stats = repack(GitBackend.open(root))
    assert stats.objects > 120 and stats.replaced_packs >= 1
    packs = list((root / "objects/pack").glob("*.pack"))
    assert len(packs) == 1
    verify = git("verify-pack", "-v", str(packs[0].with_suffix(".idx")), cwd=root).decode()
    assert "chain length = " in verify  # deltas were written
    git("fsck", "--strict", "--no-dangling", cwd=root)
    assert _sizes(root) < before
    assert git("log", "--all", "--format=%H %T", cwd=root) == log
    assert git("cat-file", "-p", unreachable.hex(), cwd=root) == b"an object no ref reaches\n"

    fresh = Repo(GitBackend.open(root))
    for branch, head in heads.items():
        assert Store(fresh, branch).head() == head
    assert Store(fresh).get("doc.txt") == text + b"edit 59\n"
    assert [Store(fresh).repo.read_commit(c).tree for c in Store(fresh).history()]
    # and again, through the command, on an already packed repository
    code, out = run("-C", str(root), "gc")
    assert code == 0 and "objects" in out
    git("fsck", "--strict", "--no-dangling", cwd=root)
