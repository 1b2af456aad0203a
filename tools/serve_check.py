"""Start a website artifact, fetch its front page once, stop it.

Usage: python tools/serve_check.py dist/www.pyz [PORT]. Prints the URL that answered
and the response's status line; exits non-zero if nothing answered.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    pyz, port = argv[0], argv[1] if len(argv) > 1 else "8080"
    child = subprocess.Popen(
        [sys.executable, pyz, "--port", port, "--ipv4", "127.0.0.1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        banner = child.stdout.readline().strip()
        print(banner)
        url = f"http://127.0.0.1:{port}/"
        with urllib.request.urlopen(url, timeout=30) as response:
            body = response.read()
            print(f"{url} answered {response.status} {response.reason}, {len(body)} bytes")
            return 0 if response.status == 200 else 1
    finally:
        child.terminate()
        child.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
