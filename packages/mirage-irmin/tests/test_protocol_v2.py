"""Fetch with Git's wire protocol version 2 (``ls-refs``, ``fetch``) from ``git
upload-pack`` on a path and from ``git daemon``; ``multi_ack_detailed``
negotiation in version 0; thin packs made by ``git pack-objects --thin`` are
completed, and pushes send thin packs ``git`` completes; the v2 parsers are
total."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import git, needs_git
from hypothesis import given
from hypothesis import strategies as st
from test_remote import daemon, git_repo, http_backend  # noqa: F401 - the fixtures

from mirage.irmin import (
    DecodeError,
    GitBackend,
    Info,
    IrminError,
    MemoryBackend,
    Repo,
    Store,
    fetch_remote,
    pack_for,
    push_remote,
)
from mirage.irmin._pack import index_pack
from mirage.irmin._remote import install_pack
from mirage.irmin._sync import thin_pack_for
from mirage.irmin._wire2 import (
    decode_packfile,
    parse_capabilities,
    parse_ls_refs,
    split_packets,
)


@needs_git
@pytest.mark.parametrize("backend", ["git", "memory"])
def test_fetch_v2_from_a_path(tmp_path: Path, backend: str) -> None:
    src = git_repo(tmp_path / "src")
    git("branch", "side", "main~1", cwd=src)
    git("tag", "-a", "-m", "t", "v1", "main", cwd=src)
    dst = GitBackend.init(tmp_path / "ours.git") if backend == "git" else MemoryBackend()
    got = fetch_remote(str(src), dst, protocol=2)
    assert set(got) == {"refs/remotes/origin/main", "refs/remotes/origin/side"}
    for branch in ("main", "side"):
        expected = git("rev-parse", branch, cwd=src).decode().strip()
        assert got[f"refs/remotes/origin/{branch}"].hex() == expected
    store = Store(Repo(dst), "x")
    store.merge_with_commit(got["refs/remotes/origin/main"], Info(1))
    assert store.tree().hex() == git("rev-parse", "main^{tree}", cwd=src).decode().strip()
    # the same as version 0
    v0 = MemoryBackend()
    assert fetch_remote(str(src), v0) == got
    # later commits: only what is new is sent (our refs are the haves)
    (src / "later").write_text("later\n")
    git("add", "-A", cwd=src)
    git("commit", "-q", "-m", "later", cwd=src)
    again = fetch_remote(str(src), dst, {"refs/heads/main": "refs/heads/main"}, protocol=2)
    assert Store(Repo(dst), "main").get("later") == b"later\n"
    assert again["refs/heads/main"].hex() == git("rev-parse", "main", cwd=src).decode().strip()
    # a tag by its name
    tags = fetch_remote(str(src), dst, {"refs/tags/v1": "refs/tags/v1"}, protocol=2)
    assert tags["refs/tags/v1"].hex() == git("rev-parse", "v1", cwd=src).decode().strip()
    with pytest.raises(IrminError):
        fetch_remote(str(src), dst, {"refs/heads/none": "refs/heads/none"}, protocol=2)
    if backend == "git":
        git("fsck", "--strict", cwd=tmp_path / "ours.git")


@needs_git
def test_fetch_v2_over_smart_http(
    http_backend: tuple[str, Path],  # noqa: F811
    tmp_path: Path,
) -> None:
    url, base = http_backend
    src = git_repo(base / "src")
    git("branch", "side", "main~1", cwd=src)
    dst = GitBackend.init(tmp_path / "ours.git")
    got = fetch_remote(f"{url}/src", dst, protocol=2)
    assert set(got) == {"refs/remotes/origin/main", "refs/remotes/origin/side"}
    assert (
        got["refs/remotes/origin/main"].hex() == git("rev-parse", "main", cwd=src).decode().strip()
    )
    (src / "later").write_text("later\n")
    git("add", "-A", cwd=src)
    git("commit", "-q", "-m", "later", cwd=src)
    again = fetch_remote(f"{url}/src", dst, {"refs/heads/main": "refs/heads/main"}, protocol=2)
    assert again["refs/heads/main"].hex() == git("rev-parse", "main", cwd=src).decode().strip()
    assert Store(Repo(dst), "main").get("later") == b"later\n"
    git("fsck", "--strict", cwd=tmp_path / "ours.git")
    # a version-0 fetch of the same over HTTP agrees
    assert fetch_remote(f"{url}/src", MemoryBackend(), {"refs/heads/side": "refs/heads/side"}) == {
        "refs/heads/side": got["refs/remotes/origin/side"]
    }


def test_fetch_v2_from_git_daemon(daemon: tuple[str, Path], tmp_path: Path) -> None:  # noqa: F811
    url, base = daemon
    git_repo(tmp_path / "src")
    git("clone", "-q", "--bare", str(tmp_path / "src"), str(base / "r.git"), cwd=tmp_path)
    ours = MemoryBackend()
    got = fetch_remote(f"{url}/r.git", ours, {"refs/heads/main": "refs/heads/main"}, protocol=2)
    assert Store(Repo(ours), "main").get("f1") == b"4\n" * 40
    assert got["refs/heads/main"].hex() == (
        git("rev-parse", "main", cwd=base / "r.git").decode().strip()
    )


@given(st.binary(max_size=200))
def test_v2_parsers_are_total(data: bytes) -> None:
    try:
        packets = split_packets(data)
    except DecodeError:
        packets = [data, 1, data[:7], 0]
    for parse in (parse_capabilities, parse_ls_refs, decode_packfile):
        try:
            parse(packets)  # type: ignore[operator]
        except DecodeError:
            pass


def test_sideband_and_errors() -> None:
    packets: list[bytes | int] = [b"packfile\n", b"\x02progress", b"\x01PA", b"\x01CK", 0]
    assert decode_packfile(packets) == b"PACK"
    with pytest.raises(DecodeError):
        decode_packfile([b"packfile\n", b"\x03boom", 0])
    with pytest.raises(DecodeError):
        decode_packfile([b"ERR no such thing\n", 0])
    caps = parse_capabilities([b"version 2\n", b"ls-refs=unborn\n", b"fetch=shallow\n", 0])
    assert caps.commands["fetch"] == {"shallow"} and caps.object_format == "sha1"
    with pytest.raises(DecodeError):
        parse_capabilities([b"# service=git-upload-pack\n", 0])


@needs_git
@pytest.mark.parametrize("backend", ["git", "memory"])
def test_thin_packs_are_completed(tmp_path: Path, backend: str) -> None:
    src = tmp_path / "src"
    git("init", "-q", "-b", "main", str(src), cwd=tmp_path)
    text = "".join(f"line {i} of a file that changes a little\n" for i in range(200))
    (src / "doc").write_text(text)
    git("add", "-A", cwd=src)
    git("commit", "-q", "-m", "one", cwd=src)
    old = git("rev-parse", "main", cwd=src).decode().strip()
    dst = GitBackend.init(tmp_path / "ours.git") if backend == "git" else MemoryBackend()
    fetch_remote(str(src), dst, {"refs/heads/main": "refs/heads/main"})
    (src / "doc").write_text(text + "one more line\n")
    git("commit", "-q", "-am", "two", cwd=src)
    new = git("rev-parse", "main", cwd=src).decode().strip()
    thin = git(
        "pack-objects",
        "--thin",
        "--stdout",
        "--revs",
        "-q",
        cwd=src,
        input=f"{new}\n^{old}\n".encode(),
    )
    with pytest.raises(DecodeError):
        index_pack(thin)  # its delta base is not in it
    assert install_pack(dst, thin) >= 3
    dst.update_ref("refs/heads/main", bytes.fromhex(old), bytes.fromhex(new))
    assert Store(Repo(dst), "main").get("doc") == (text + "one more line\n").encode()
    if backend == "git":
        git("fsck", "--strict", cwd=tmp_path / "ours.git")


@needs_git
@pytest.mark.parametrize("transport", ["path", "http"])
def test_multi_ack_detailed_finds_common_history_below_our_tips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest, transport: str
) -> None:
    import mirage.irmin._remote as remote

    if transport == "http":  # stateless: every round is a POST to git http-backend
        url, base = request.getfixturevalue("http_backend")
        src = base / "src"
        where = f"{url}/src"
    else:
        src = tmp_path / "src"
        where = str(src)
    git("init", "-q", "-b", "main", str(src), cwd=tmp_path)

    def commits(first: int, last: int) -> None:
        for i in range(first, last):
            (src / f"f{i % 7}").write_text(f"version {i}\n" * 30)
            git("add", "-A", cwd=src)
            git("commit", "-q", "-m", f"c{i}", cwd=src)

    commits(0, 60)
    base = git("rev-parse", "main", cwd=src).decode().strip()
    dst = GitBackend.init(tmp_path / "ours.git")
    fetch_remote(where, dst, {"refs/heads/main": "refs/heads/mine"})
    mine = Store(Repo(dst), "mine")
    mine.set("local", b"1", Info(1))  # local commits the server never saw: our tips
    mine.set("local", b"2", Info(2))
    commits(60, 100)
    acks: list[tuple[bytes, str]] = []
    installed: list[int] = []
    read_acks, install = remote._read_acks, remote._install

    def spy_acks(conn):  # type: ignore[no-untyped-def]
        got = read_acks(conn)
        acks.extend(got)
        return got

    def spy_install(backend, pack):  # type: ignore[no-untyped-def]
        installed.append(install(backend, pack))
        return installed[-1]

    monkeypatch.setattr(remote, "_read_acks", spy_acks)
    monkeypatch.setattr(remote, "_install", spy_install)
    got = fetch_remote(where, dst, {"refs/heads/main": "refs/remotes/origin/main"})
    assert (
        got["refs/remotes/origin/main"].hex() == git("rev-parse", "main", cwd=src).decode().strip()
    )
    assert any(kind in ("common", "ready") and oid.hex() == base for oid, kind in acks)
    new_objects = len(git("rev-list", "--objects", f"{base}..main", cwd=src).splitlines())
    all_objects = len(git("rev-list", "--objects", "main", cwd=src).splitlines())
    assert installed and installed[0] <= new_objects < all_objects
    git("fsck", "--strict", cwd=tmp_path / "ours.git")


@needs_git
def test_thin_packs_in_push(tmp_path: Path) -> None:
    ours = GitBackend.init(tmp_path / "ours.git")
    store = Store(Repo(ours))
    text = b"".join(b"line %d of a long file\n" % i for i in range(300))
    old = store.set("dir/doc", text, Info(1))
    assert old is not None
    bare = tmp_path / "bare.git"
    git("init", "-q", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    push_remote(ours, str(bare), "main")
    new = store.set("dir/doc", text + b"one more\n", Info(2))
    assert new is not None
    thin = thin_pack_for(ours, [new], [old])
    with pytest.raises(DecodeError):
        index_pack(thin)  # a base is outside the pack
    assert len(thin) < len(pack_for(ours, [new], {old}))
    probe = tmp_path / "probe.git"
    git("clone", "-q", "--bare", str(bare), str(probe), cwd=tmp_path)
    git("index-pack", "--stdin", "--fix-thin", "--strict", cwd=probe, input=thin)
    push_remote(ours, str(bare), "main")  # receive-pack completes the thin pack
    git("fsck", "--strict", cwd=bare)
    assert git("show", "main:dir/doc", cwd=bare) == text + b"one more\n"
