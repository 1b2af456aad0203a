"""Content-Type by file extension: a fixed table, the same on every host (a
unikernel has no /etc/mime.types)."""

from __future__ import annotations

__all__ = ["DEFAULT_TYPE", "content_type"]

DEFAULT_TYPE = "application/octet-stream"

_TYPES = {
    "html": "text/html; charset=utf-8",
    "htm": "text/html; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "mjs": "text/javascript; charset=utf-8",
    "json": "application/json",
    "map": "application/json",
    "txt": "text/plain; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "xml": "application/xml",
    "atom": "application/atom+xml",
    "rss": "application/rss+xml",
    "svg": "image/svg+xml",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "avif": "image/avif",
    "ico": "image/vnd.microsoft.icon",
    "woff": "font/woff",
    "woff2": "font/woff2",
    "ttf": "font/ttf",
    "otf": "font/otf",
    "pdf": "application/pdf",
    "wasm": "application/wasm",
    "zip": "application/zip",
    "gz": "application/gzip",
    "tar": "application/x-tar",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "wav": "audio/wav",
    "mp4": "video/mp4",
    "webm": "video/webm",
    "webmanifest": "application/manifest+json",
}


def content_type(name: str) -> str:
    """The media type for a file name (by its last extension, any case)."""
    _, dot, ext = name.rpartition(".")
    if not dot or "/" in ext:
        return DEFAULT_TYPE
    return _TYPES.get(ext.lower(), DEFAULT_TYPE)
