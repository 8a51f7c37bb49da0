"""Chat templates for training: the original (inference) template and a copy with generation markers.

Assistant-only loss needs `{% generation %}` / `{% endgeneration %}` around what the model must
learn to write (role prompt, answer, end-of-turn token): `apply_chat_template(...,
return_assistant_tokens_mask=True)` then marks exactly those tokens, from the messages, with no
searching of rendered text. Most shipped templates lack the markers, so each template we support
comes as a pair of files in `templates/`:

    NAME.jinja           the original template, byte for byte as the model ships it
    NAME_training.jinja  the same template with generation markers; renders identical text

`smollm2` is SmolLM2-Instruct's ChatML (the embedded default). `llama2` is Llama-2-chat's
template (meta-llama/Llama-2-7b-chat-hf) and `mistral` Mistral-7B-Instruct-v0.1's current one
(Mistral's 2024 "v1" rewrite, which takes a system message); the paper tuned the *base* Llama-2-7B
and Mistral-7B, which ship no template, so their recipes name one. docs/train.md says which
revision each file is and why; tests/test_templates.py pins their rendered text.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from selfprompt.errors import ConfigError

TEMPLATE_NAMES = ("smollm2", "llama2", "mistral")


@dataclass(frozen=True)
class ChatTemplatePair:
    name: str
    original: str  # what the saved tokenizer carries, for inference
    training: str  # same text, plus {% generation %} markers around the assistant output


def _read(filename: str) -> str:
    text = resources.files("selfprompt.train").joinpath("templates", filename).read_text(encoding="utf-8")
    # The files end with one newline for editors; templates themselves do not.
    return text[:-1] if text.endswith("\n") else text


def load_template_pair(name: str) -> ChatTemplatePair:
    if name not in TEMPLATE_NAMES:
        raise ConfigError(f"unknown chat_template '{name}'; valid: auto, {', '.join(TEMPLATE_NAMES)}")
    return ChatTemplatePair(name=name, original=_read(f"{name}.jinja"), training=_read(f"{name}_training.jinja"))


def select_template_pair(tokenizer, name: str = "auto") -> ChatTemplatePair:
    """The pair for `name`, or with "auto" the one whose original equals the tokenizer's template."""
    if name != "auto":
        return load_template_pair(name)
    current = getattr(tokenizer, "chat_template", None)
    if not current:
        raise ConfigError(
            "the model's tokenizer has no chat template (a base model?); set chat_template to one of "
            + ", ".join(TEMPLATE_NAMES)
        )
    for candidate in TEMPLATE_NAMES:
        pair = load_template_pair(candidate)
        if pair.original.strip() == current.strip():
            return pair
    if "{% generation %}" in current or "{%- generation %}" in current:
        return ChatTemplatePair(name="model", original=current, training=current)
    raise ConfigError(
        "the model's chat template has no {% generation %} markers and is not one we ship a training copy of; "
        f"set chat_template to one of {', '.join(TEMPLATE_NAMES)}, or add NAME.jinja and NAME_training.jinja "
        "to selfprompt/train/templates/"
    )
