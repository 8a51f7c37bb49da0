"""Content hashes of files, remembered by (path, size, mtime, ctime) so that a second look costs nothing.

Model identities (weights of many GB) and the data-mirror check hash whole files. The hashes are
kept in one small sqlite index in the selfprompt cache folder (`$SELFPROMPT_CACHE`, default
`~/.cache/selfprompt`): a file whose size or times are unchanged is not read again; any change
(an edit, a copy, `touch`) makes it hashed afresh. When the index cannot be written (a read-only
home), every look hashes the file.

    file_sha256(path) -> "3730d3..."            sha256 of one file (64 hex characters)
    files_sha256({"a.json": path, ...}) -> str  sha256 over names and file hashes (a folder's content)
    digests_sha256({"a.json": "3730d3..."})     the same, from digests already known
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path

from selfprompt.manifest import sha256_file

CACHE_ENV = "SELFPROMPT_CACHE"
INDEX_FILE = "file-hashes.sqlite"


def cache_dir() -> Path:
    """selfprompt's cache folder: $SELFPROMPT_CACHE, else ~/.cache/selfprompt."""
    root = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "selfprompt")
    return Path(root)


def _signature(st: os.stat_result) -> str:
    # ctime cannot be set back by a user (touch -d sets mtime only), so an edit that restores the
    # mtime is still seen.
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"


def _connect() -> sqlite3.Connection | None:
    try:
        folder = cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(folder / INDEX_FILE), timeout=30.0, isolation_level=None)
        db.execute(
            "CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, signature TEXT NOT NULL, sha256 TEXT NOT NULL)"
        )
        return db
    except (OSError, sqlite3.Error):
        return None


def file_sha256(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes; from the index when the file is unchanged since it was last hashed.

    Raises FileNotFoundError for a missing file.
    """
    real = Path(path).resolve()  # a hub snapshot's files are links into its blob store
    before = _signature(real.stat())
    db = _connect()
    try:
        if db is not None:
            try:
                row = db.execute("SELECT signature, sha256 FROM hashes WHERE path = ?", (str(real),)).fetchone()
            except sqlite3.Error:
                row = None
            if row is not None and row[0] == before:
                return row[1]
        digest = sha256_file(real)
        # A file that changed while it was read is hashed again next time rather than remembered wrong.
        if db is not None and _signature(real.stat()) == before:
            try:
                db.execute(
                    "INSERT OR REPLACE INTO hashes (path, signature, sha256) VALUES (?, ?, ?)",
                    (str(real), before, digest),
                )
            except sqlite3.Error:
                pass
        return digest
    finally:
        if db is not None:
            db.close()


def files_sha256(files: Mapping[str, str | Path]) -> str:
    """One sha256 over several files: their names (as given) and contents, independent of order."""
    return digests_sha256({name: file_sha256(path) for name, path in files.items()})


def digests_sha256(digests: Mapping[str, str]) -> str:
    """One sha256 over named digests ({name: sha256 hex}), independent of order: files_sha256 of their files."""
    entries = sorted(digests.items())
    return hashlib.sha256(json.dumps(entries, separators=(",", ":")).encode("utf-8")).hexdigest()
