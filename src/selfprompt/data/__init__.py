"""Data: example loaders (LIMA, instruction JSONL) and the local data mirror."""

from selfprompt.data.loaders import LIMA_HUB_ID, LIMA_MIRROR_FILE, lima_id, load_examples
from selfprompt.data.mirror import (
    DATA_DIR_ENV,
    check_files,
    mirror_path,
    read_manifest,
    resolve_data_dir,
    verify_mirror,
)

data_dir = resolve_data_dir  # `data_dir(explicit)`: --data-dir > $SELFPROMPT_DATA_DIR > error

__all__ = [
    "DATA_DIR_ENV",
    "LIMA_HUB_ID",
    "LIMA_MIRROR_FILE",
    "check_files",
    "data_dir",
    "lima_id",
    "load_examples",
    "mirror_path",
    "read_manifest",
    "resolve_data_dir",
    "verify_mirror",
]
