"""The local data mirror: a folder in the layout of `../shared/data` with a MANIFEST.json of sha256s.

Where it is: `--data-dir` (passed in) > the environment variable SELFPROMPT_DATA_DIR > an error
that says how to set it. Nothing is copied into the repository; stages read the mirror in place.

Every mirror file a stage reads is first checked against its sha256 in MANIFEST.json
(`check_files`): a changed or damaged file stops the stage with an error naming the file and both
hashes, and a file the manifest does not list is refused. (A data folder without a MANIFEST.json,
such as the rows of a user's own task file, is not a mirror and is read unchecked.) Hashes are
remembered by path, size and times (`selfprompt.hashindex`), so a file is read for the check only
once until it changes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from selfprompt.errors import ConfigError, DataError
from selfprompt.hashindex import file_sha256

DATA_DIR_ENV = "SELFPROMPT_DATA_DIR"
MANIFEST_FILE = "MANIFEST.json"


def resolve_data_dir(explicit: str | Path | None = None, *, required: bool = True) -> Path | None:
    """The mirror folder: `explicit` (--data-dir) first, then $SELFPROMPT_DATA_DIR.

    With `required=False` a missing setting gives None (callers then try the hub); a setting that
    points at a missing folder is always an error, since the user asked for it.
    """
    chosen = explicit if explicit not in (None, "") else os.environ.get(DATA_DIR_ENV) or None
    if chosen is None:
        if not required:
            return None
        raise ConfigError(
            f"no data mirror given: pass --data-dir /path/to/data or set {DATA_DIR_ENV}=/path/to/data "
            "(the local data mirror: one folder per dataset and a MANIFEST.json of sources and sha256s)"
        )
    path = Path(chosen).expanduser()
    if not path.is_dir():
        source = "--data-dir" if explicit not in (None, "") else DATA_DIR_ENV
        raise ConfigError(f"data mirror '{path}' (from {source}) is not a folder")
    return path


def read_manifest(data_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(data_dir) / MANIFEST_FILE
    if not path.exists():
        raise DataError(str(path), None, None, "file not found; the data mirror needs a MANIFEST.json")
    try:
        entries = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise DataError(str(path), e.lineno, None, f"invalid JSON ({e.msg})") from None
    if not isinstance(entries, list):
        raise DataError(str(path), None, None, "expected a JSON list of datasets")
    for i, entry in enumerate(entries):
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("name"), str)
            or not isinstance(entry.get("files"), list)
        ):
            raise DataError(str(path), None, f"[{i}]", "each dataset needs a 'name' and a 'files' list")
    return entries


def mirror_path(name_or_relpath: str, data_dir: str | Path | None = None) -> Path:
    """A dataset name with one file ('lima', 'gsm8k') or a path inside the mirror ('mmlu/test/x.csv')."""
    root = resolve_data_dir(data_dir)
    assert root is not None
    candidate = root / name_or_relpath
    if candidate.is_file():
        check_files(root, [candidate])
        return candidate
    for entry in read_manifest(root):
        if entry["name"] == name_or_relpath:
            if len(entry["files"]) != 1:
                raise ConfigError(
                    f"dataset '{name_or_relpath}' has {len(entry['files'])} files; name one, e.g. "
                    f"'{entry['files'][0]['path']}'"
                )
            path = root / entry["files"][0]["path"]
            if not path.is_file():
                raise DataError(str(path), None, None, f"listed in {MANIFEST_FILE} but missing from the mirror")
            check_files(root, [path])
            return path
    raise DataError(str(candidate), None, None, f"not in the data mirror {root} (neither a file nor a dataset name)")


def manifest_hashes(data_dir: str | Path) -> dict[str, str]:
    """Path inside the mirror (posix, e.g. 'gsm8k/test.jsonl') -> sha256, from MANIFEST.json."""
    root = Path(data_dir)
    hashes = {}
    for i, entry in enumerate(read_manifest(root)):
        for k, spec in enumerate(entry["files"]):
            if not (isinstance(spec, dict) and all(isinstance(spec.get(k), str) for k in ("path", "sha256"))):
                raise DataError(
                    str(root / MANIFEST_FILE), None, f"[{i}].files[{k}]", "each file needs 'path' and 'sha256'"
                )
            hashes[spec["path"]] = spec["sha256"].lower()
    return hashes


def _mismatch(path: Path, expected: str) -> str | None:
    """Why `path` does not match the manifest's sha256, or None when it does."""
    if not path.is_file():
        return "missing"
    actual = file_sha256(path)
    if actual != expected:
        return f"sha256 {actual} does not match the sha256 {expected} in {MANIFEST_FILE}"
    return None


def check_files(data_dir: str | Path, paths: Iterable[str | Path]) -> None:
    """Check mirror files against MANIFEST.json before they are read.

    Raises DataError naming the file: changed or damaged (with the file's sha256 and the manifest's),
    or not listed in the manifest. Paths outside the folder are not the mirror's and are skipped; a
    folder without a MANIFEST.json is a user's own data folder (a task file's rows), not a mirror,
    and has nothing to be checked against.
    """
    root = Path(os.path.abspath(data_dir))
    if not (root / MANIFEST_FILE).is_file():
        return
    hashes: dict[str, str] | None = None
    for path in paths:
        try:
            relative = Path(os.path.abspath(path)).relative_to(root).as_posix()
        except ValueError:
            continue
        if hashes is None:
            hashes = manifest_hashes(root)
        if relative not in hashes:
            raise DataError(
                str(path),
                None,
                None,
                f"not listed in {root / MANIFEST_FILE}, so it cannot be checked; "
                "add an entry with its sha256, or keep the file outside the data mirror",
            )
        problem = _mismatch(Path(path), hashes[relative])
        if problem:
            raise DataError(
                str(path),
                None,
                None,
                f"{problem}: the mirror file was changed or damaged; restore it "
                "from the source its manifest entry names",
            )


def verify_mirror(data_dir: str | Path | None = None, names: Iterable[str] | None = None) -> list[Path]:
    """Check files against MANIFEST.json sha256s; returns the verified paths, raises on the first problems."""
    root = resolve_data_dir(data_dir)
    assert root is not None
    entries = read_manifest(root)
    wanted = set(names) if names is not None else None
    if wanted is not None:
        unknown = wanted - {e["name"] for e in entries}
        if unknown:
            raise ConfigError(f"unknown dataset(s) {sorted(unknown)} in {root / MANIFEST_FILE}")
    hashes = manifest_hashes(root)
    verified, problems = [], []
    for entry in entries:
        if wanted is not None and entry["name"] not in wanted:
            continue
        for spec in entry["files"]:
            path = root / spec["path"]
            if problem := _mismatch(path, hashes[spec["path"]]):
                problems.append(f"{path}: {problem}")
            else:
                verified.append(path)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise DataError(str(root / MANIFEST_FILE), None, None, f"data mirror does not match: {shown}")
    return verified
