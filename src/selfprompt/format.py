"""Self-prompt formats: how a role prompt and an answer share one assistant turn.

The default format, `role-tags` version 1, renders

    <role>
    From now on, you are an expert ...
    </role>

    The answer ...

`render` and `parse` are exact inverses for any unicode role and answer. Only the role needs
escaping (the answer is everything after the first closing tag): a role containing `</role>`
gets one backslash added inside the tag (`<\\/role>`), and any tag that already carries k
backslashes gets k+1, so escaping is a bijection and ordinary text is never touched.

`parse` also reads what real models emit: truncated output, missing or misplaced markers,
extra whitespace. It never raises; `ParsedOutput.held` says whether the format held and
`problem` says what went wrong when it did not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from selfprompt.errors import ConfigError


@dataclass(frozen=True)
class ParsedOutput:
    role: str | None  # None when the output carries no role at all
    answer: str
    held: bool  # True when the output was exactly in the trained format
    problem: str | None = None  # why `held` is False: no-role, unclosed-role, heuristic-role, ...


# A role written without markers still usually opens like the paper's prompts do.
_ROLE_OPENERS = re.compile(r"^\s*(from now on,? you are|you are (an?|the) )", re.IGNORECASE)


@dataclass(frozen=True)
class SelfPromptFormat:
    name: str
    version: str
    open_tag: str
    close_tag: str

    @property
    def id(self) -> str:
        return f"{self.name}-v{self.version}"

    # --- exact encoding -------------------------------------------------------------
    def _tag_pattern(self, min_backslashes: int) -> re.Pattern[str]:
        """Closing tags with at least `min_backslashes` backslashes after '<'; group 1 holds the rest."""
        head, tail = self.close_tag[0], self.close_tag[1:]
        return re.compile(re.escape(head) + "\\\\" * min_backslashes + r"(\\*)" + re.escape(tail))

    def escape_role(self, role: str) -> str:
        head, tail = self.close_tag[0], self.close_tag[1:]
        return self._tag_pattern(0).sub(lambda m: head + "\\" + m.group(1) + tail, role)

    def unescape_role(self, role: str) -> str:
        head, tail = self.close_tag[0], self.close_tag[1:]
        return self._tag_pattern(1).sub(lambda m: head + m.group(1) + tail, role)

    def role_prefix(self, role: str) -> str:
        """Everything before the answer; also the prefill that forces a given role."""
        return f"{self.open_tag}\n{self.escape_role(role)}\n{self.close_tag}\n\n"

    def render(self, role: str, answer: str) -> str:
        return self.role_prefix(role) + answer

    # --- tolerant decoding ----------------------------------------------------------
    def parse(self, text: str) -> ParsedOutput:
        exact = self._parse_exact(text)
        if exact is not None:
            return exact
        return self._parse_tolerant(text)

    def _parse_exact(self, text: str) -> ParsedOutput | None:
        start = self.open_tag + "\n"
        if not text.startswith(start):
            return None
        close = text.find(self.close_tag, len(start))
        end = self.close_tag + "\n\n"
        if close < len(start) or text[close - 1] != "\n" or not text.startswith(end, close):
            return None
        role = self.unescape_role(text[len(start) : close - 1])
        return ParsedOutput(role=role, answer=text[close + len(end) :], held=True)

    def _parse_tolerant(self, text: str) -> ParsedOutput:
        opened = text.find(self.open_tag)
        closed = text.find(self.close_tag, opened + 1 if opened >= 0 else 0)
        if opened >= 0 and closed > opened:
            role = self.unescape_role(text[opened + len(self.open_tag) : closed]).strip()
            answer = text[closed + len(self.close_tag) :].strip()
            leading = text[:opened].strip()
            return ParsedOutput(role, answer, held=not leading, problem="text-before-role" if leading else None)
        if opened >= 0:
            role = self.unescape_role(text[opened + len(self.open_tag) :]).strip()
            return ParsedOutput(role=role, answer="", held=False, problem="unclosed-role")
        if closed >= 0:
            return ParsedOutput(
                role=text[:closed].strip(), answer=text[closed + len(self.close_tag) :].strip(),
                held=False, problem="missing-open-tag",
            )
        if _ROLE_OPENERS.match(text):
            role, _, answer = text.strip().partition("\n\n")
            return ParsedOutput(role=role.strip(), answer=answer.strip(), held=False, problem="heuristic-role")
        return ParsedOutput(role=None, answer=text.strip(), held=False, problem="no-role")


ROLE_TAGS_V1 = SelfPromptFormat(name="role-tags", version="1", open_tag="<role>", close_tag="</role>")
FORMATS: dict[str, SelfPromptFormat] = {ROLE_TAGS_V1.id: ROLE_TAGS_V1, ROLE_TAGS_V1.name: ROLE_TAGS_V1}
DEFAULT_FORMAT = ROLE_TAGS_V1


def get_format(name: str) -> SelfPromptFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ConfigError(f"unknown self-prompt format '{name}'; valid: {', '.join(sorted(FORMATS))}") from None
