"""The course secret from which the hidden checks' inputs are drawn.

Reading this public repository tells a student how the hidden cases are made, but not which ones: their random
generator is seeded from HMAC-SHA256(secret, "<assignment>/<check>"), and the secret is 32 random bytes in the
instructor's course folder (<course>/.grader_secret, mode 0600), made on first use, outside any sandbox. Rotate it
each term with `python -m grader.secret rotate --course DIR` (grades already given stay; a re-run draws new cases).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import pathlib
import secrets

NAME = ".grader_secret"


def path(course_root):
    return pathlib.Path(course_root) / NAME


def load(course_root, create=True):
    """The secret's bytes; made (atomically, mode 0600) when the course has none and create is true."""
    target = path(course_root)
    try:
        text = target.read_text().strip()
    except FileNotFoundError:
        if not create:
            raise
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another grader made it a moment ago
            return load(course_root, create=False)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
        text = target.read_text().strip()
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) < 16:
        raise ValueError(f"{target} does not hold a secret (64 hexadecimal digits); delete it to make a new one")
    return value


def seed(secret, assignment, key):
    """The hidden cases' seed of one check (a 64-bit integer)."""
    digest = hmac.new(secret, f"{assignment}/{key}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "little")


def rotate(course_root):
    target = path(course_root)
    target.unlink(missing_ok=True)
    return load(course_root)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m grader.secret", description=__doc__.split("\n")[0])
    p.add_argument("command", choices=["rotate", "show-path"])
    p.add_argument("--course", type=pathlib.Path, default=pathlib.Path.cwd())
    options = p.parse_args(argv)
    if options.command == "rotate":
        rotate(options.course)
        print(f"New secret in {path(options.course)}")
    else:
        print(path(options.course))


if __name__ == "__main__":
    main()
