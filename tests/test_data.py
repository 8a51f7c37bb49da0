"""Data loaders and the local mirror: real LIMA file, Alpaca/Dolly/mapped JSONL, malformed lines."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from selfprompt.data import data_dir as resolve_data_dir
from selfprompt.data import load_examples, mirror_path, verify_mirror
from selfprompt.errors import ConfigError, DataError


def write_lines(path, lines):
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_lima_mirror_file(data_dir):
    examples = load_examples("lima", data_dir=data_dir)
    assert len(examples) == 1022
    assert [e.id for e in examples[:3]] == ["lima-00000", "lima-00001", "lima-00002"]
    assert len({e.id for e in examples}) == 1022
    raw = [json.loads(line) for line in (data_dir / "lima" / "train.jsonl").read_text().splitlines()]
    assert all(e.question == r["conversations"][0] and e.answer == r["conversations"][1] for e, r in zip(examples, raw))
    assert all(e.source == "lima" and e.turns is None for e in examples)  # the mirror keeps first exchanges only
    assert [e.id for e in load_examples("lima", data_dir=data_dir, limit=5)] == [e.id for e in examples[:5]]


def test_lima_format_path_with_multi_turn(tmp_path):
    path = write_lines(tmp_path / "lima.jsonl", [
        {"conversations": ["q1", "a1"], "source": "stackexchange"},
        {"conversations": ["q2", "a2", "follow-up", "a3"], "source": "multi_turn"},
        {"conversations": ["q3"], "source": "test"},
    ])
    ex = load_examples(str(path))
    assert [(e.id, e.question, e.answer) for e in ex] == [("lima-00000", "q1", "a1"), ("lima-00001", "q2", "a2"),
                                                          ("lima-00002", "q3", "")]
    assert [m.role for m in ex[1].turns] == ["user", "assistant", "user", "assistant"]
    assert ex[1].turns[2].content == "follow-up"


@pytest.mark.parametrize("line, field, message", [
    ('{"conversations": ["q", "a"]', None, "invalid JSON"),
    ({"source": "x"}, "conversations", "missing"),
    ({"conversations": "q"}, "conversations", "list"),
    ({"conversations": ["q", 7]}, "conversations[1]", "string"),
    ({"conversations": ["  ", "a"]}, "conversations[0]", "empty"),
    ({"conversations": ["q", "a"], "source": 3}, "source", "string"),
])
def test_malformed_lima_names_file_line_field(tmp_path, line, field, message):
    path = write_lines(tmp_path / "bad.jsonl", [{"conversations": ["ok", "fine"]}, "", line])
    with pytest.raises(DataError, match=message) as err:
        load_examples(str(path))
    assert (err.value.path, err.value.line, err.value.field) == (str(path), 3, field)
    assert str(err.value).startswith(f"{path}:3")


def test_alpaca_dolly_and_field_map(tmp_path):
    alpaca = write_lines(tmp_path / "alpaca.jsonl", [
        {"instruction": "Add.", "input": "2 + 3", "output": "5"},
        {"instruction": "Say hi.", "input": "", "output": "hi"},
    ])
    ex = load_examples(str(alpaca))
    assert [(e.id, e.question, e.answer, e.source) for e in ex] == [
        ("alpaca-00000", "Add.\n\n2 + 3", "5", "alpaca"), ("alpaca-00001", "Say hi.", "hi", "alpaca")]
    dolly = write_lines(tmp_path / "dolly.jsonl", [
        {"instruction": "Summarize.", "context": "Long text.", "response": "Short.", "category": "summarization"}])
    assert load_examples(str(dolly))[0].question == "Summarize.\n\nLong text."
    custom = write_lines(tmp_path / "custom.jsonl", [{"prompt": "p", "completion": "c", "uid": 17}])
    ex = load_examples(str(custom), field_map={"question": "prompt", "answer": "completion", "id": "uid"})
    assert (ex[0].id, ex[0].question, ex[0].answer) == ("17", "p", "c")


def test_instruction_jsonl_errors(tmp_path):
    bad_type = write_lines(tmp_path / "a.jsonl", [{"instruction": "x", "output": "y"}, {"instruction": 5, "output": "y"}])
    with pytest.raises(DataError) as err:
        load_examples(str(bad_type))
    assert (err.value.line, err.value.field) == (2, "instruction") and "string" in str(err.value)
    missing = write_lines(tmp_path / "b.jsonl", [{"prompt": "p", "completion": "c"}, {"prompt": "p2"}])
    with pytest.raises(DataError) as err:
        load_examples(str(missing), field_map={"question": "prompt", "answer": "completion"})
    assert (err.value.line, err.value.field, err.value.detail) == (2, "completion", "missing")
    dup = write_lines(tmp_path / "c.jsonl", [{"q": "a", "id": "x"}, {"q": "b", "id": "x"}])
    with pytest.raises(DataError, match="duplicate id 'x'.*line 1") as err:
        load_examples(str(dup), field_map={"question": "q", "id": "id"})
    assert err.value.line == 2
    unknown = write_lines(tmp_path / "d.jsonl", [{"foo": "bar"}])
    with pytest.raises(DataError, match="field map"):
        load_examples(str(unknown))
    with pytest.raises(ConfigError, match="valid keys"):
        load_examples(str(unknown), field_map={"question": "foo", "colour": "bar"})
    with pytest.raises(DataError, match="file not found"):
        load_examples(str(tmp_path / "nope.jsonl"))


def test_data_dir_resolution(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SELFPROMPT_DATA_DIR", str(data_dir))
    assert resolve_data_dir() == data_dir
    assert resolve_data_dir(tmp_path) == tmp_path  # --data-dir wins over the environment
    monkeypatch.delenv("SELFPROMPT_DATA_DIR")
    with pytest.raises(ConfigError, match="--data-dir.*SELFPROMPT_DATA_DIR"):
        resolve_data_dir()
    with pytest.raises(ConfigError, match="not a folder"):
        resolve_data_dir(tmp_path / "missing")


def test_mirror_verify_and_paths(data_dir, tmp_path):
    assert mirror_path("lima", data_dir) == data_dir / "lima" / "train.jsonl"
    assert mirror_path("gsm8k/test.jsonl", data_dir) == data_dir / "gsm8k" / "test.jsonl"
    with pytest.raises(ConfigError, match="name one"):
        mirror_path("mmlu", data_dir)
    assert verify_mirror(data_dir, names=["lima", "gsm8k"]) == [data_dir / "lima/train.jsonl", data_dir / "gsm8k/test.jsonl"]
    with pytest.raises(ConfigError, match="unknown dataset"):
        verify_mirror(data_dir, names=["nope"])

    # A copy of the mirror with one changed byte and one missing file.
    copy = tmp_path / "mirror"
    (copy / "lima").mkdir(parents=True)
    shutil.copy(data_dir / "MANIFEST.json", copy / "MANIFEST.json")
    data = bytearray((data_dir / "lima" / "train.jsonl").read_bytes())
    data[100] ^= 1
    (copy / "lima" / "train.jsonl").write_bytes(bytes(data))
    with pytest.raises(DataError, match="lima/train.jsonl: sha256 .* does not match"):
        verify_mirror(copy, names=["lima"])
    with pytest.raises(DataError, match="gsm8k/test.jsonl: missing"):
        verify_mirror(copy, names=["gsm8k"])


def test_lima_without_local_file_explains_the_gated_hub(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SELFPROMPT_DATA_DIR"}
    env["HF_HUB_OFFLINE"] = "1"  # the hub is unreachable here; offline mode fails at once instead of retrying
    code = "from selfprompt.data import load_examples; load_examples('lima')"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode != 0 and last.startswith("selfprompt.errors.DataError: hf://datasets/GAIR/lima")
    assert "gated" in last and "HF_TOKEN" in last and "SELFPROMPT_DATA_DIR" in last
