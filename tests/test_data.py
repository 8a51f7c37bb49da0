"""Data loaders and the local mirror: real LIMA file, Alpaca/Dolly/mapped JSONL, malformed lines."""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from selfprompt import hashindex
from selfprompt.data import data_dir as resolve_data_dir
from selfprompt.data import lima_id, load_examples, mirror_path, verify_mirror
from selfprompt.errors import ConfigError, DataError

from conftest import CountingHash


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
    path = write_lines(
        tmp_path / "lima.jsonl",
        [
            {"conversations": ["q1", "a1"], "source": "stackexchange"},
            {"conversations": ["q2", "a2", "follow-up", "a3"], "source": "multi_turn"},
            {"conversations": ["q3"], "source": "test"},
        ],
    )
    ex = load_examples(str(path))
    assert [(e.id, e.question, e.answer) for e in ex] == [
        ("lima-00000", "q1", "a1"),
        ("lima-00001", "q2", "a2"),
        ("lima-00002", "q3", ""),
    ]
    assert [m.role for m in ex[1].turns] == ["user", "assistant", "user", "assistant"]
    assert ex[1].turns[2].content == "follow-up"


@pytest.mark.parametrize(
    "line, field, message",
    [
        ('{"conversations": ["q", "a"]', None, "invalid JSON"),
        ({"source": "x"}, "conversations", "missing"),
        ({"conversations": "q"}, "conversations", "list"),
        ({"conversations": ["q", 7]}, "conversations[1]", "string"),
        ({"conversations": ["  ", "a"]}, "conversations[0]", "empty"),
        ({"conversations": ["q", "a"], "source": 3}, "source", "string"),
    ],
)
def test_malformed_lima_names_file_line_field(tmp_path, line, field, message):
    path = write_lines(tmp_path / "bad.jsonl", [{"conversations": ["ok", "fine"]}, "", line])
    with pytest.raises(DataError, match=message) as err:
        load_examples(str(path))
    assert (err.value.path, err.value.line, err.value.field) == (str(path), 3, field)
    assert str(err.value).startswith(f"{path}:3")


def test_alpaca_dolly_and_field_map(tmp_path):
    alpaca = write_lines(
        tmp_path / "alpaca.jsonl",
        [
            {"instruction": "Add.", "input": "2 + 3", "output": "5"},
            {"instruction": "Say hi.", "input": "", "output": "hi"},
        ],
    )
    ex = load_examples(str(alpaca))
    assert [(e.id, e.question, e.answer, e.source) for e in ex] == [
        ("alpaca-00000", "Add.\n\n2 + 3", "5", "alpaca"),
        ("alpaca-00001", "Say hi.", "hi", "alpaca"),
    ]
    dolly = write_lines(
        tmp_path / "dolly.jsonl",
        [{"instruction": "Summarize.", "context": "Long text.", "response": "Short.", "category": "summarization"}],
    )
    assert load_examples(str(dolly))[0].question == "Summarize.\n\nLong text."
    custom = write_lines(tmp_path / "custom.jsonl", [{"prompt": "p", "completion": "c", "uid": 17}])
    ex = load_examples(str(custom), field_map={"question": "prompt", "answer": "completion", "id": "uid"})
    assert (ex[0].id, ex[0].question, ex[0].answer) == ("17", "p", "c")


def test_instruction_jsonl_errors(tmp_path):
    bad_type = write_lines(
        tmp_path / "a.jsonl", [{"instruction": "x", "output": "y"}, {"instruction": 5, "output": "y"}]
    )
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
    assert verify_mirror(data_dir, names=["lima", "gsm8k"]) == [
        data_dir / "lima/train.jsonl",
        data_dir / "gsm8k/test.jsonl",
    ]
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
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode != 0 and last.startswith("selfprompt.errors.DataError: hf://datasets/GAIR/lima")
    assert "gated" in last and "HF_TOKEN" in last and "SELFPROMPT_DATA_DIR" in last


# --- the mirror is checked against MANIFEST.json ----------------------------------------------------


def mirror_copy(data_dir: Path, folder: Path, *files: str) -> Path:
    for rel in files:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(data_dir / rel, folder / rel)
    shutil.copy2(data_dir / "MANIFEST.json", folder / "MANIFEST.json")
    return folder


def manifest_sha(data_dir: Path, rel: str) -> str:
    entries = json.loads((data_dir / "MANIFEST.json").read_text())
    return next(f["sha256"] for e in entries for f in e["files"] if f["path"] == rel)


def test_a_tampered_mirror_file_stops_every_reader_naming_the_file_and_both_sha256s(data_dir, tmp_path, monkeypatch):
    from selfprompt.evaluate.judge_cli import load_questions
    from selfprompt.evaluate.tasks import get_tasks, load_items

    monkeypatch.setenv("SELFPROMPT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SELFPROMPT_DATA_DIR", raising=False)
    readers = {  # every way a stage reads a mirror file
        "gsm8k/test.jsonl": lambda root: load_items(get_tasks(["gsm8k"])[0], root),
        "lima/train.jsonl": lambda root: load_examples("lima", data_dir=root),
        "vicuna_bench/question.jsonl": lambda root: load_questions("vicuna_bench", str(root)),
    }
    copy = mirror_copy(data_dir, tmp_path / "mirror", *readers)
    for rel, read in readers.items():
        path = copy / rel
        assert len(read(copy)) > 0
        original, times = path.read_bytes(), path.stat()
        tampered = bytearray(original)
        tampered[len(tampered) // 2] ^= 1
        path.write_bytes(bytes(tampered))
        os.utime(path, ns=(times.st_atime_ns, times.st_mtime_ns))  # same size, same mtime: still caught
        with pytest.raises(DataError) as err:
            read(copy)
        assert err.value.path == str(path)
        assert hashlib.sha256(tampered).hexdigest() in str(err.value)
        assert manifest_sha(data_dir, rel) in str(err.value)
        path.write_bytes(original)
        assert len(read(copy)) > 0  # restored: accepted again
    with pytest.raises(DataError, match="gsm8k/test.jsonl: sha256 .* does not match"):
        (copy / "gsm8k" / "test.jsonl").write_bytes(b"{}\n")
        verify_mirror(copy, names=["gsm8k"])


def test_a_mirror_file_missing_from_the_manifest_is_refused(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SELFPROMPT_CACHE", str(tmp_path / "cache"))
    copy = mirror_copy(data_dir, tmp_path / "mirror", "gsm8k/test.jsonl")
    shutil.copy2(copy / "gsm8k" / "test.jsonl", copy / "gsm8k" / "extra.jsonl")
    with pytest.raises(DataError, match="not listed in .*MANIFEST.json") as err:
        mirror_path("gsm8k/extra.jsonl", copy)
    assert err.value.path == str(copy / "gsm8k" / "extra.jsonl")
    assert mirror_path("gsm8k/test.jsonl", copy) == copy / "gsm8k" / "test.jsonl"


def test_a_second_check_of_an_unchanged_mirror_reads_no_file_again(data_dir, tmp_path, monkeypatch):
    from selfprompt.evaluate.tasks import get_tasks, load_items, task_files

    monkeypatch.setenv("SELFPROMPT_CACHE", str(tmp_path / "cache"))
    counting = CountingHash(hashindex.sha256_file)
    monkeypatch.setattr(hashindex, "sha256_file", counting)
    specs = get_tasks(["gsm8k", "date_understanding", "commonsenseqa"])
    files = {p.resolve() for s in specs for p in task_files(s, data_dir)}  # the mirror may sit behind a link
    assert {p.resolve() for p in counting.calls} == files and len(counting.calls) == len(files)  # each read once
    counting.calls.clear()
    for spec in specs:  # a second run: the check costs lookups only
        assert load_items(spec, data_dir)
    load_examples("lima", data_dir=data_dir)
    counting.calls.clear()
    load_examples("lima", data_dir=data_dir)
    verify_mirror(data_dir, names=["gsm8k", "lima"])
    for spec in specs:
        task_files(spec, data_dir)
    assert counting.calls == []
    # A copy with new times is read again, once.
    copy = mirror_copy(data_dir, tmp_path / "mirror", "gsm8k/test.jsonl")
    os.utime(copy / "gsm8k" / "test.jsonl", ns=(1, 1))
    task_files(specs[0], copy)
    task_files(specs[0], copy)
    assert counting.calls == [copy / "gsm8k" / "test.jsonl"]


def test_lima_ids_are_the_same_in_every_code_path(data_dir):
    from selfprompt.train.template_roles import lima_template_roles

    by_name = load_examples("lima", data_dir=data_dir, limit=60)
    by_path = load_examples(str(data_dir / "lima" / "train.jsonl"), limit=60)
    templated = lima_template_roles(data_dir / "lima" / "train.jsonl")[:60]
    assert [e.id for e in by_name] == [e.id for e in by_path] == [r.id for r in templated]
    assert by_name[42].id == templated[42].id == lima_id(42) == "lima-00042"
    assert [(r.question, r.answer) for r in templated] == [(e.question, e.answer) for e in by_name]


# --- a UTF-8 byte order mark is accepted by every reader ---------------------------------------------

BOM = codecs.BOM_UTF8


def test_every_reader_accepts_a_utf8_bom(tmp_path, monkeypatch):
    from selfprompt.evaluate.judge import load_answers
    from selfprompt.evaluate.tasks import load_items, load_task_file
    from selfprompt.jsonl import read_records
    from selfprompt.records import Example
    from selfprompt.report.build import load_run

    monkeypatch.setenv("SELFPROMPT_CACHE", str(tmp_path / "cache"))
    alpaca = tmp_path / "alpaca.jsonl"
    alpaca.write_bytes(BOM + b'{"instruction": "Name a colour.", "output": "Red."}\n')
    assert [(e.question, e.answer) for e in load_examples(str(alpaca))] == [("Name a colour.", "Red.")]
    lima = tmp_path / "lima.jsonl"
    lima.write_bytes(BOM + b'{"conversations": ["q", "a"]}\n{"conversations": ["q2", "a2"]}\n')
    assert [e.id for e in load_examples(str(lima))] == ["lima-00000", "lima-00001"]
    records = tmp_path / "records.jsonl"
    records.write_bytes(BOM + json.dumps({"id": "x", "question": "q"}).encode() + b"\n")
    assert read_records(records, Example)[0].id == "x"
    answers = tmp_path / "answers.jsonl"
    answers.write_bytes(BOM + b'{"id": 1, "question": "q", "answer": "a"}\n')
    assert list(load_answers(answers)) == ["1"]

    # A mirror whose MANIFEST.json and data files carry a BOM (CSV: the first column keeps its name).
    mirror = tmp_path / "mirror"
    (mirror / "sums").mkdir(parents=True)
    csv_bytes = BOM + b"question,answer\nWhat is 2 + 3?,5\nWhat is 4 + 4?,8\n"
    json_bytes = BOM + json.dumps([{"question": "What is 1 + 1?", "answer": "2"}]).encode()
    (mirror / "sums" / "test.csv").write_bytes(csv_bytes)
    (mirror / "sums" / "test.json").write_bytes(json_bytes)
    manifest = [
        {
            "name": "sums",
            "files": [
                {"path": "sums/test.csv", "sha256": hashlib.sha256(csv_bytes).hexdigest()},
                {"path": "sums/test.json", "sha256": hashlib.sha256(json_bytes).hexdigest()},
            ],
        }
    ]
    (mirror / "MANIFEST.json").write_bytes(BOM + json.dumps(manifest).encode())
    for name, file, fmt in (("sums_csv", "sums/test.csv", "csv"), ("sums_json", "sums/test.json", "json-list")):
        task = tmp_path / f"{name}.yaml"
        task.write_text(
            yaml.safe_dump(
                {
                    "name": name,
                    "version": "1",
                    "files": [file],
                    "file_format": fmt,
                    "row": {"question": "{question}", "answer": "answer"},
                    "answer_type": "number",
                    "extractors": ["answer-is-number", "last-number"],
                    "role_family": "math",
                }
            )
        )
        items = load_items(load_task_file(task), mirror)
        assert [(i.question, i.answer) for i in items][:1] == [
            (("What is 2 + 3?", "5") if fmt == "csv" else ("What is 1 + 1?", "2"))
        ]

    # The report reads the eval's JSON files.
    run = tmp_path / "eval"
    (run / "items").mkdir(parents=True)
    (run / "results.json").write_bytes(
        BOM
        + json.dumps({"tasks": {"sums_csv": {"conditions": {"plain": {"n": 0, "lenient": {}, "strict": {}}}}}}).encode()
    )
    assert [s.name for s in load_run(run).systems] == ["eval"]
