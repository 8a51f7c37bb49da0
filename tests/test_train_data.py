"""Training data: chat templates, the loss mask, exclusions and mode parity (tokenizer only, no training)."""

from __future__ import annotations

import json
import re

import pytest

from selfprompt.errors import ConfigError, DataError
from selfprompt.format import DEFAULT_FORMAT
from selfprompt.records import Annotation, RoleExample
from selfprompt.train.config import TrainConfig, load_config
from selfprompt.train.data import IGNORE_INDEX, build_messages, prepare_examples
from selfprompt.train.template_roles import lima_template_roles
from selfprompt.train.templates import TEMPLATE_NAMES, load_template_pair, select_template_pair


@pytest.fixture(scope="module")
def tokenizer(default_model):
    from selfprompt.models import load_tokenizer

    return load_tokenizer(default_model)


@pytest.fixture(scope="module")
def lima_rows(data_dir):
    return lima_template_roles(data_dir / "lima" / "train.jsonl")


def trained_text(tokenizer, example) -> str:
    """The tokens that carry a loss, decoded."""
    return tokenizer.decode([lab for lab in example.labels if lab != IGNORE_INDEX])


def expected_trained_text(template: str, content: str, eos: str) -> str:
    """What each template's assistant turn puts after the prompt, written out by hand from the template."""
    if template == "smollm2":
        return content + "<|im_end|>"  # ChatML; the '\n' after <|im_end|> is never generated, so not trained
    if template == "llama2":
        return " " + content.strip() + " " + eos
    if template == "mistral":
        return " " + content + eos
    raise AssertionError(template)


GENERATION = re.compile(r"\{%-?\s*generation\s*-?%\}")
CONVERSATIONS = [
    [
        {"role": "user", "content": "Why is the sky blue?"},
        {"role": "assistant", "content": "<role>\nYou are a physicist.\n</role>\n\nRayleigh scattering."},
    ],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": " hi "},
        {"role": "assistant", "content": "Hello! "},
        {"role": "user", "content": "Again?"},
        {"role": "assistant", "content": "Yes.\n"},
    ],
]


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_training_template_renders_byte_identical_to_original(tokenizer, name):
    pair = load_template_pair(name)
    assert GENERATION.search(pair.training) and not GENERATION.search(pair.original)
    for messages in CONVERSATIONS:
        for gen_prompt in (False, True):
            conv = messages[:-1] if gen_prompt else messages
            original = tokenizer.apply_chat_template(
                conv, chat_template=pair.original, tokenize=False, add_generation_prompt=gen_prompt
            )
            training = tokenizer.apply_chat_template(
                conv, chat_template=pair.training, tokenize=False, add_generation_prompt=gen_prompt
            )
            assert training == original


def test_auto_template_matches_the_default_models_own(tokenizer):
    assert select_template_pair(tokenizer, "auto").name == "smollm2"
    assert load_template_pair("smollm2").original == tokenizer.chat_template


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
@pytest.mark.parametrize("mode", ["self-prompt", "baseline"])
def test_trained_tokens_are_exactly_role_answer_and_end_of_turn(tokenizer, lima_rows, name, mode):
    pair = load_template_pair(name)
    rows = lima_rows[:12]
    data = prepare_examples(
        rows,
        tokenizer,
        pair.training,
        mode=mode,
        fmt=DEFAULT_FORMAT,
        system_prompt=None,
        max_length=100_000,
        include_statuses=["ok"],
    )
    assert data.row_ids == [r.id for r in rows] and not data.excluded
    for row, example in zip(rows, data.examples):
        content = DEFAULT_FORMAT.render(row.role_prompt, row.answer) if mode == "self-prompt" else row.answer
        trained = trained_text(tokenizer, example)
        expected = expected_trained_text(name, content, tokenizer.eos_token)
        if trained != expected:
            # Only allowed difference: the first trained token straddles the turn boundary (a BPE may
            # merge a prompt's last character with the turn's first); the model must still emit that whole token.
            first = next(i for i, lab in enumerate(example.labels) if lab != IGNORE_INDEX)
            extra = trained[: len(trained) - len(expected)]
            assert trained.endswith(expected) and tokenizer.decode(example.input_ids[first : first + 1]).startswith(
                extra
            )
        # the trained tokens are one contiguous run at the end of the turn: the prompt is never trained
        positions = [i for i, lab in enumerate(example.labels) if lab != IGNORE_INDEX]
        assert positions == list(range(positions[0], positions[-1] + 1))
        prompt = tokenizer.decode(example.input_ids[: positions[0]])
        assert row.question.strip() in prompt and DEFAULT_FORMAT.open_tag not in prompt


def _row(id_, question, answer, status="ok", role="From now on, you are an expert in testing."):
    return RoleExample(
        id=id_,
        question=question,
        answer=answer,
        role_prompt=role if status == "ok" else "",
        annotation=Annotation(teacher="t", template="x", template_version="1", status=status),
    )


def _edge_answer(tokenizer, template, limit):
    """An answer whose row fits `limit` tokens as a baseline but not with its role prompt."""
    for n in range(10, 400):
        row = _row("edge", "Edge?", "x " * n)
        sizes = {
            mode: len(
                prepare_examples(
                    [row],
                    tokenizer,
                    template,
                    mode=mode,
                    fmt=DEFAULT_FORMAT,
                    system_prompt=None,
                    max_length=10_000,
                    include_statuses=["ok"],
                )
                .examples[0]
                .input_ids
            )
            for mode in ("self-prompt", "baseline")
        }
        if sizes["self-prompt"] > limit:
            assert sizes["baseline"] <= limit
            return "x " * n
    raise AssertionError("no edge size found")


def test_exclusions_are_reported_and_identical_in_both_modes(tokenizer):
    pair = load_template_pair("smollm2")
    rows = [
        _row("a", "Short question?", "Short answer."),
        _row("refused", "Q?", "A.", status="refused"),
        _row("long", "Long one?", "word " * 400),  # fits neither mode in 128 tokens
        _row(
            "edge", "Edge?", _edge_answer(tokenizer, pair.training, 128)
        ),  # fits only as a baseline: dropped from both
        _row("b", "Another?", "Fine."),
    ]
    results = {
        mode: prepare_examples(
            rows,
            tokenizer,
            pair.training,
            mode=mode,
            fmt=DEFAULT_FORMAT,
            system_prompt=None,
            max_length=128,
            include_statuses=["ok"],
        )
        for mode in ("self-prompt", "baseline")
    }
    for data in results.values():
        assert data.row_ids == ["a", "b"]
        assert data.excluded == {"status-refused": ["refused"], "too-long": ["long", "edge"]}
        assert all(len(e.input_ids) <= 128 and e.trained_tokens > 0 for e in data.examples)
    assert results["self-prompt"].row_ids_sha256() == results["baseline"].row_ids_sha256()


def test_shortest_order_and_max_rows_are_mode_independent(tokenizer, lima_rows):
    pair = load_template_pair("smollm2")
    ids = {
        mode: prepare_examples(
            lima_rows[:200],
            tokenizer,
            pair.training,
            mode=mode,
            fmt=DEFAULT_FORMAT,
            system_prompt=None,
            max_length=512,
            include_statuses=["ok"],
            row_order="shortest",
            max_rows=16,
        ).row_ids
        for mode in ("self-prompt", "baseline")
    }
    assert ids["self-prompt"] == ids["baseline"] and len(ids["baseline"]) == 16


def test_messages_differ_between_modes_only_in_the_assistant_turn(lima_rows):
    row = lima_rows[0]
    sp = build_messages(row, "self-prompt", DEFAULT_FORMAT, "sys")
    base = build_messages(row, "baseline", DEFAULT_FORMAT, "sys")
    assert sp[:-1] == base[:-1]
    assert DEFAULT_FORMAT.parse(sp[-1]["content"]).role == row.role_prompt
    assert DEFAULT_FORMAT.parse(sp[-1]["content"]).answer == base[-1]["content"] == row.answer


def test_config_unknown_key_and_bad_value_name_the_key(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data: x.jsonl\noutput_dir: out\nlearning_rat: 0.1\n")
    with pytest.raises(ConfigError, match="unknown key 'learning_rat'"):
        load_config(recipe)
    recipe.write_text("data: x.jsonl\noutput_dir: out\n")
    with pytest.raises(ConfigError, match="key 'lora_r'"):
        load_config(recipe, ["lora_r=zero"])
    cfg = load_config(recipe, ["mode=baseline", "lora_target_modules=[q_proj, v_proj]", "epochs=2"])
    assert (cfg.mode, cfg.lora_target_modules, cfg.epochs) == ("baseline", ["q_proj", "v_proj"], 2.0)
    other = cfg.model_copy(update={"mode": "self-prompt", "output_dir": "elsewhere"})
    assert other.parity_sha256() == cfg.parity_sha256()
    assert cfg.model_copy(update={"seed": 1}).parity_sha256() != cfg.parity_sha256()


def test_every_shipped_recipe_validates():
    from pathlib import Path

    recipes = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml"))
    assert len(recipes) >= 5
    for path in recipes:
        text = path.read_text()
        assert text.startswith("# selfprompt train --config recipes/") or text.startswith("# accelerate launch"), path
        cfg = load_config(path)
        assert set(TrainConfig.model_fields) <= set(_yaml_keys(path)), f"{path} does not name every knob"
        assert cfg.data


def _yaml_keys(path):
    import yaml

    return yaml.safe_load(path.read_text()).keys()


def test_qlora_on_cpu_is_a_clear_error():
    import torch

    from selfprompt.train.recipe import load_model

    if torch.cuda.is_available():
        pytest.skip("has a GPU")
    cfg = TrainConfig(data="x", output_dir="y", method="qlora")
    with pytest.raises(ConfigError, match="CUDA GPU"):
        load_model(cfg, None)


def test_bad_data_line_is_reported_with_file_line_field(tmp_path, tokenizer):
    from selfprompt.train.recipe import prepare_data

    good = _row("a", "Q?", "A.").model_dump()
    bad = dict(good, id="b")
    del bad["annotation"]
    path = tmp_path / "role.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    cfg = TrainConfig(data=str(path), output_dir=str(tmp_path / "o"))
    with pytest.raises(DataError, match=r"role\.jsonl:2: field 'annotation'"):
        prepare_data(cfg, tokenizer, load_template_pair("smollm2"))


def test_dry_run_marks_trained_spans(tmp_path, lima_rows):
    from io import StringIO

    from rich.console import Console

    from selfprompt.jsonl import write_records
    from selfprompt.train.recipe import prepare_data, print_dry_run, setup_tokenizer

    path = tmp_path / "role.jsonl"
    write_records(path, lima_rows[:5])
    cfg = TrainConfig(data=str(path), output_dir=str(tmp_path / "o"), max_length=2048)
    _, tok, pair = setup_tokenizer(cfg)
    data = prepare_data(cfg, tok, pair)
    buf = StringIO()
    print_dry_run(data, tok, 2, Console(file=buf, width=200, color_system=None))
    text = buf.getvalue()
    kept = data.examples[:2]
    for example in kept:
        assert example.id in text
    # the marked span opens exactly where the assistant turn's content starts
    assert text.count("⟦<role>") == 2 and text.count("<|im_end|>⟧") == 2
    assert f"{len(data.examples)} rows" in text
