"""The prompt text of a request under a chat template, prefill included, for backends that render locally.

A prefill (`ChatRequest.assistant_prefix`) must render exactly as training rendered the start of
that assistant turn, or a tuned model sees a context it never saw. Appending the prefix to the
generation prompt is wrong wherever the template puts something between the generation prompt
and the message (Llama-2 and Mistral put a space after `[/INST]`: training saw `[/INST] <role>`,
concatenation gives `[/INST]<role>`). So the prefix is rendered as a final assistant message and
cut where the message would go on: transformers' `continue_final_message`, the semantics vLLM and
SGLang give a prefill over HTTP.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from selfprompt.generate.backends.base import ChatRequest

# render(messages, **kwargs) -> text: tokenizer.apply_chat_template(..., tokenize=False) or
# transformers' render_jinja_template, both taking add_generation_prompt / continue_final_message.
Renderer = Callable[..., str]


def render_chat_prompt(render: Renderer, request: ChatRequest) -> str:
    """The exact prompt text for `request`: the generation prompt, or the open assistant turn that
    starts with `request.assistant_prefix`.

    Invariant (tested for every shipped template): for a prefix P and any continuation X that is not
    all whitespace, the result ends with P and is a prefix of the training rendering of the same
    messages plus the assistant message P + X. Raises what the template raises (roles out of order)."""
    messages: list[dict[str, Any]] = [m.model_dump() for m in request.messages]
    prefix = request.assistant_prefix
    if not prefix:
        return render(messages, add_generation_prompt=True)
    prompt = render([*messages, {"role": "assistant", "content": prefix}], continue_final_message=True)
    # transformers drops the prefix's trailing whitespace when the template strips the message's end
    # (Llama-2's content.strip()). In training the message goes on after the prefix, so the template
    # kept that whitespace there: put it back, or "<role>\n" would prompt as "<role>".
    trailing = prefix[len(prefix.rstrip()) :]
    if trailing and not prompt.endswith(prefix):
        prompt += trailing
    return prompt
