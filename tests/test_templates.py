"""Shipped chat templates, pinned to their rendered text; a prefill renders as training rendered it.

The expected strings are written out by hand from each real template's semantics (see docs/train.md
for the revision each file is): they are the spec, not output of our code. Llama-2 and Mistral get
BOS/EOS "<s>"/"</s>" as their tokenizers have them; ChatML (smollm2) uses neither.
"""

from __future__ import annotations

import copy

import pytest
from transformers.utils.chat_template_utils import render_jinja_template

from selfprompt.format import DEFAULT_FORMAT
from selfprompt.generate.backends.base import ChatRequest
from selfprompt.generate.backends.hf import render_prompt
from selfprompt.generate.backends.llamacpp import render_with_template
from selfprompt.train.templates import TEMPLATE_NAMES, load_template_pair

BOS, EOS = "<s>", "</s>"
SMOL_SYSTEM = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"

SYSTEM = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "4."},
]
MULTI_TURN = [
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "4."},
    {"role": "user", "content": "And 3+3?"},
    {"role": "assistant", "content": "6."},
]
QUESTION = [{"role": "user", "content": "What is 2+2?"}]
SKY = [{"role": "user", "content": "Why is the sky blue?"}]
ROLE_PREFIX = "<role>\nYou are a physicist.\n</role>\n\n"

# name -> (system + user + assistant, multi-turn, generation prompt, prefill with ROLE_PREFIX)
EXPECTED = {
    "smollm2": (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n4.<|im_end|>\n",
        SMOL_SYSTEM + "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4.<|im_end|>\n"
        "<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n6.<|im_end|>\n",
        SMOL_SYSTEM + "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
        SMOL_SYSTEM + "<|im_start|>user\nWhy is the sky blue?<|im_end|>\n<|im_start|>assistant\n" + ROLE_PREFIX,
    ),
    "llama2": (
        "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nWhat is 2+2? [/INST] 4. </s>",
        "<s>[INST] What is 2+2? [/INST] 4. </s><s>[INST] And 3+3? [/INST] 6. </s>",
        "<s>[INST] What is 2+2? [/INST]",  # the template has no generation prompt: the turn opens with ' '
        "<s>[INST] Why is the sky blue? [/INST] " + ROLE_PREFIX,
    ),
    "mistral": (
        "<s> [INST] Be brief.\n\nWhat is 2+2? [/INST] 4.</s>",
        "<s> [INST] What is 2+2? [/INST] 4.</s> [INST] And 3+3? [/INST] 6.</s>",
        "<s> [INST] What is 2+2? [/INST]",
        "<s> [INST] Why is the sky blue? [/INST] " + ROLE_PREFIX,
    ),
}


def render(template: str, messages: list[dict], **kwargs) -> str:
    rendered, _ = render_jinja_template(
        conversations=[messages], chat_template=template, bos_token=BOS, eos_token=EOS, **kwargs
    )
    return rendered[0]


def prefilled(template: str, messages: list[dict], prefix: str) -> str:
    request = ChatRequest(messages=messages, assistant_prefix=prefix)
    return render_with_template(template, request, BOS, EOS)


def test_every_shipped_template_is_pinned():
    assert set(EXPECTED) == set(TEMPLATE_NAMES)


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
@pytest.mark.parametrize("copy_", ["original", "training"])
def test_template_renders_the_pinned_text(name, copy_):
    template = getattr(load_template_pair(name), copy_)
    with_system, multi_turn, generation_prompt, prefill = EXPECTED[name]
    assert render(template, SYSTEM) == with_system
    assert render(template, MULTI_TURN) == multi_turn
    assert render(template, QUESTION, add_generation_prompt=True) == generation_prompt
    assert prefilled(template, SKY, ROLE_PREFIX) == prefill


def test_mistral_is_the_current_v1_template_not_the_older_ones():
    # Unlike Mixtral/v0.2's template, a space after </s>; unlike v0.1's first one, a system message is taken.
    mistral = load_template_pair("mistral").original
    assert render(mistral, MULTI_TURN[:3]).endswith("4.</s> [INST] And 3+3? [/INST]")
    assert render(mistral, SYSTEM).startswith("<s> [INST] Be brief.\n\n")


@pytest.mark.parametrize("name", ["llama2", "mistral"])  # ChatML (smollm2) has no alternation check
def test_roles_out_of_order_are_refused(name):
    from jinja2.exceptions import TemplateError

    template = load_template_pair(name).original
    with pytest.raises(TemplateError, match="alternate"):
        render(template, [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])


# ------------------------------------------------------------------------------------------------
# prefill == training
# ------------------------------------------------------------------------------------------------
ROLE = "You are a physicist who explains optics plainly."
ANSWER = "Rayleigh scattering: short wavelengths scatter more."
PREFIXES = [
    DEFAULT_FORMAT.role_prefix(ROLE),  # a forced role: the answer follows
    DEFAULT_FORMAT.role_prefix(""),  # self-prompt-no-role: an empty role block, ends in "\n\n"
    DEFAULT_FORMAT.open_tag + "\n",  # the open tag alone, ends in "\n"
    DEFAULT_FORMAT.open_tag + "\nFrom now on, you are ",  # ends in a space
    DEFAULT_FORMAT.open_tag + "\nFrom now on, you are",  # ends mid-sentence
]
CONVERSATIONS = [
    SKY,
    [{"role": "system", "content": "Be brief."}, *SKY],
    [*MULTI_TURN, *SKY],
]


@pytest.fixture(scope="module")
def tokenizer(default_model):
    from selfprompt.models import load_tokenizer

    return load_tokenizer(default_model)


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
@pytest.mark.parametrize("prefix", PREFIXES)
def test_prefill_renders_as_in_training(tokenizer, name, prefix):
    """The inference prompt with a prefill is the training text of the whole turn, cut where the prefill ends."""
    pair = load_template_pair(name)
    tok = copy.deepcopy(tokenizer)
    tok.chat_template = pair.original  # what a model trained with this pair carries
    for messages in CONVERSATIONS:
        full = prefix + ANSWER if prefix[-1].isspace() else prefix + " " + ANSWER
        trained = tok.apply_chat_template(
            [*messages, {"role": "assistant", "content": full}], chat_template=pair.training, tokenize=False
        )
        request = ChatRequest(messages=messages, assistant_prefix=prefix)
        prompt = render_prompt(tok, request)
        assert trained.startswith(prompt), (prompt, trained)
        assert prompt.endswith(prefix)  # the response text is what follows the prefill, verbatim
        assert trained[len(prompt) :].startswith(full[len(prefix) :])  # nothing between prefill and continuation
        # the llamacpp backend renders the same text from the same template
        assert render_with_template(pair.original, request, tok.bos_token, tok.eos_token) == prompt


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_no_prefill_is_the_generation_prompt(tokenizer, name):
    tok = copy.deepcopy(tokenizer)
    tok.chat_template = load_template_pair(name).original
    request = ChatRequest(messages=SKY)
    assert render_prompt(tok, request) == tok.apply_chat_template(SKY, tokenize=False, add_generation_prompt=True)
