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

A malformed role block never takes the answer with it:

* an unclosed role ends at its first blank line (the trained format puts one after the role;
  a model that skips `</role>` still writes it); without one it runs to the end, as when the
  output was cut while the role was being written;
* a role is one or more sentences of instructions; from the first sentence that gives an
  answer (`the answer is`, `Answer:`, `####`, `\\boxed{`) or a code block on, the text is answer;
* text before the opening tag is kept in front of the answer;
* tags are found whatever their case (`</Role>`); only the exact trained layout holds;
* an unclosed role without a blank line ends at its first line break when that line reads like a
  role and more follows (the model wrote the role on one line and went on answering);
* when all this would still leave the answer empty, the role keeps only its leading run of sentences
  that read like a role (second person, "From now on", "As a ..."), and the rest is the answer;
  text that reads like a role stays role, so a role cut while being written gives no answer;
* a role without any tags is recognised only by its opening ("From now on, you are", "You are
  a") and only when another paragraph follows it; a single paragraph is all answer.

Outputs of conditions that ask for no role are not parsed at all (see
`selfprompt.generate.conditions.read_answer`).

`StreamParser` reads the same format as the text arrives (for `ask` and `serve`): it decides the role
as soon as the rest of the text can no longer change what `parse` makes of it, then streams the answer;
on any chunking of a text, what it gives equals `parse` of the whole text.
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
# Where an answer starts inside what was meant to be a role: a stated answer or a code block.
_ANSWER_START = re.compile(r"\b(?:the\s+(?:final\s+)?answer\s+is|answer\s*:)|####|\\boxed\{|```", re.IGNORECASE)
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_SENTENCE_END = re.compile(r"[.!?:][\"')\]]*\s+|\n")


# A sentence of a role prompt speaks to the model: second person, or an opening such as "As a ...".
_ROLE_LIKE = re.compile(r"\byou(?:r|rs|rself|'re|'ll)?\b|^\W*(?:from now on|as an?|act as|imagine)\b", re.IGNORECASE)


def _role_like_prefix(role: str) -> tuple[str, str]:
    """(role, answer): the leading run of sentences that read like a role, and everything after it.

    Used only where the answer would otherwise be empty, so a role that holds the answer without any
    answer cue ("You are a teacher. Janet makes $18 a day.") gives the answer up. A first sentence
    that does not read like a role leaves the role empty."""
    start = 0
    for end in [m.end() for m in _SENTENCE_END.finditer(role)] + [len(role)]:
        sentence = role[start:end]
        if sentence.strip() and not _ROLE_LIKE.search(sentence.strip()):
            return role[:start], role[start:]
        start = end
    return role, ""


def _split_off_answer(role: str) -> tuple[str, str]:
    """(role, answer): the answer starts at the sentence that states one (or at a code block)."""
    cue = _ANSWER_START.search(role)
    if cue is None:
        return role, ""
    if role.startswith("```", cue.start()):
        start = cue.start()
    else:
        start = max((m.end() for m in _SENTENCE_END.finditer(role, 0, cue.start())), default=0)
    return role[:start], role[start:]


def _join(*parts: str) -> str:
    return "\n\n".join(p.strip() for p in parts if p.strip())


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
    def parse(self, text: str, *, untagged: bool = True) -> ParsedOutput:
        """Role and answer of one output. `untagged=False`: only a tagged role counts (for text that may
        come from a model never taught the format, where "You are a ..." is just how an answer opens)."""
        exact = self._parse_exact(text)
        if exact is not None:
            return exact
        return self._parse_tolerant(text, untagged)

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

    def _parse_tolerant(self, text: str, untagged: bool = True) -> ParsedOutput:
        # Only the exact layout (see _parse_exact) holds; anything that reaches here is malformed, so
        # held is False for every shape, and the tags are found whatever their case.
        opener = re.compile(re.escape(self.open_tag), re.IGNORECASE).search(text)
        opened = opener.start() if opener else -1
        body_start = opener.end() if opener else 0
        closer = re.compile(re.escape(self.close_tag), re.IGNORECASE).search(text, body_start)
        leading = text[:opened] if opened >= 0 else ""  # e.g. "Sure!": kept in the answer, never dropped
        if closer is not None:
            body = text[body_start : closer.start()]
            role, spilled = _split_off_answer(self.unescape_role(body))
            after = text[closer.end() :]
            if not _join(leading, spilled, after):
                role, spilled = _role_like_prefix(role)
            answer = _join(leading, spilled, after)
            if opener is None:
                problem = "missing-open-tag"
            elif leading.strip():
                problem = "text-before-role"
            elif spilled.strip():
                problem = "answer-in-role"
            else:
                problem = "tag-layout"  # miscased tags, or not the trained newlines around them
            return ParsedOutput(role.strip(), answer, held=False, problem=problem)
        if opener is not None:
            body = text[body_start:].lstrip()
            blank = _BLANK_LINE.search(body)
            role, after = (body[: blank.start()], body[blank.end() :]) if blank else (body, "")
            role, spilled = _split_off_answer(self.unescape_role(role))
            if not blank and not spilled.strip():
                # No blank line: the leading lines that read like a role are the role, the lines after them
                # the answer (a model that wrote the role on its own line and went straight on answering).
                lines = role.strip().split("\n")
                kept = next((i for i, line in enumerate(lines) if not _ROLE_LIKE.search(line)), len(lines))
                if 0 < kept < len(lines):
                    role, spilled = "\n".join(lines[:kept]), "\n".join(lines[kept:])
            if not _join(leading, spilled, after):
                role, spilled = _role_like_prefix(role)
            return ParsedOutput(
                role=role.strip(), answer=_join(leading, spilled, after), held=False, problem="unclosed-role"
            )
        if untagged and _ROLE_OPENERS.match(text):
            role, _, answer = text.strip().partition("\n\n")
            role, spilled = _split_off_answer(role)
            if answer.strip() and role.strip():
                return ParsedOutput(
                    role=role.strip(), answer=_join(spilled, answer), held=False, problem="heuristic-role"
                )
        return ParsedOutput(role=None, answer=text.strip(), held=False, problem="no-role")


@dataclass(frozen=True)
class RoleDecided:
    """The role of a streamed output, given once, before any answer text: `parse`'s role, held and problem."""

    role: str | None
    held: bool
    problem: str | None = None


StreamEvent = RoleDecided | str  # a str is the next piece of the answer


class StreamParser:
    """Splits a self-prompt output into role and answer as it arrives, agreeing with `fmt.parse`.

    `feed(piece)` and `finish()` return events: one RoleDecided, then answer pieces (str). For any
    chunking of a text T, the RoleDecided equals parse(T)'s role, held and problem, and the pieces join
    to parse(T).answer exactly. So the role is decided only when no continuation can change it:

    * the exact format: once the first closing tag and the two characters after it have arrived; the
      answer then streams verbatim;
    * both tags present, any case or layout: once a non-blank answer part is known (parse's answer is
      then the parts before the tags plus what follows them, each stripped); the rest streams with its
      leading blanks dropped and trailing ones held back until more text follows;
    * anything else (no tag yet, or a role still open) could still change with a later tag, so it is
      decided by `finish()`, from the whole text.
    """

    def __init__(self, fmt: SelfPromptFormat):
        self.fmt = fmt
        self.text = ""  # everything fed so far
        self.decided: RoleDecided | None = None
        self._verbatim = False  # exact format: the answer is the rest of the text as it comes
        self._separator = ""  # "\n\n" owed before the first non-blank text of the tail (tolerant layout)
        self._tail_started = False  # tolerant layout: the tail's leading blanks are behind us
        self._held_blank = ""  # tolerant layout: trailing blanks, sent only when more text follows them

    def feed(self, piece: str) -> list[StreamEvent]:
        self.text += piece
        if self.decided is not None:
            return self._answer_piece(piece)
        return self._try_decide()

    def finish(self) -> list[StreamEvent]:
        """End of the text: the role is decided now if it was not yet. Returns the last events."""
        if self.decided is not None:
            return []
        parsed = self.fmt.parse(self.text)
        self.decided = RoleDecided(parsed.role, parsed.held, parsed.problem)
        return [self.decided] + ([parsed.answer] if parsed.answer else [])

    def result(self) -> ParsedOutput:
        """parse() of everything fed (call after finish)."""
        return self.fmt.parse(self.text)

    def _answer_piece(self, piece: str) -> list[StreamEvent]:
        if self._verbatim:
            return [piece] if piece else []
        if not self._tail_started:
            piece = piece.lstrip()
            if not piece:
                return []
            self._tail_started = True
            piece, self._separator = self._separator + piece, ""
        body = piece.rstrip()
        if not body:
            self._held_blank += piece
            return []
        out, self._held_blank = self._held_blank + body, piece[len(body) :]
        return [out]

    def _try_decide(self) -> list[StreamEvent]:
        fmt, text = self.fmt, self.text
        start = fmt.open_tag + "\n"
        if text.startswith(start):
            close = text.find(fmt.close_tag, len(start))
            after = close + len(fmt.close_tag) + 2  # "\n\n" follows the tag in the exact layout
            if close < 0 or len(text) < after:
                return []  # the exact layout may still hold
            exact = fmt._parse_exact(text)
            if exact is not None:
                self.decided, self._verbatim = RoleDecided(exact.role, True), True
                return [self.decided] + ([exact.answer] if exact.answer else [])
        elif start.startswith(text):
            return []  # may still become the exact layout's opening
        opener = re.compile(re.escape(fmt.open_tag), re.IGNORECASE).search(text)
        if opener is None:
            return []  # a tag further on would change the reading
        closer = re.compile(re.escape(fmt.close_tag), re.IGNORECASE).search(text, opener.end())
        if closer is None:
            return []  # an open role: where it ends depends on what follows
        leading = text[: opener.start()]
        role, spilled = _split_off_answer(fmt.unescape_role(text[opener.end() : closer.start()]))
        head = _join(leading, spilled)
        tail = text[closer.end() :]
        if not (head or tail.strip()):
            return []  # an empty answer so far: parse would take the answer from the role
        if leading.strip():
            problem = "text-before-role"
        elif spilled.strip():
            problem = "answer-in-role"
        else:
            problem = "tag-layout"
        self.decided = RoleDecided(role.strip(), False, problem)
        self._separator = "\n\n" if head else ""
        events: list[StreamEvent] = [self.decided] + ([head] if head else [])
        return events + self._answer_piece(tail)


ROLE_TAGS_V1 = SelfPromptFormat(name="role-tags", version="1", open_tag="<role>", close_tag="</role>")
FORMATS: dict[str, SelfPromptFormat] = {ROLE_TAGS_V1.id: ROLE_TAGS_V1, ROLE_TAGS_V1.name: ROLE_TAGS_V1}
DEFAULT_FORMAT = ROLE_TAGS_V1


def get_format(name: str) -> SelfPromptFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ConfigError(f"unknown self-prompt format '{name}'; valid: {', '.join(sorted(FORMATS))}") from None
