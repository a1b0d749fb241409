"""Server-Sent Events, decoded line by line as the WHATWG HTML standard describes them."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Final

_LINE_END: Final = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event: its type (``message`` unless named), data and last id."""

    event: str
    data: str
    id: str | None


class SseDecoder:
    """Feed it the stream's lines (without their line end); it returns each finished event.

    A blank line dispatches the buffered event; ``data`` lines join with a newline; a line
    starting with a colon is a comment (keep-alive); one space after the colon is dropped.
    """

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._last_id: str | None = None

    def feed(self, line: str) -> ServerSentEvent | None:
        """Take one line; return the event a blank line completes, else ``None``."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._last_id = value
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return ServerSentEvent(event or "message", "\n".join(data), self._last_id)


class SseStream:
    """Bytes of an event stream in, finished events out (the standard's "parsing" rules).

    UTF-8 with bad bytes replaced (U+FFFD) and a leading byte order mark dropped; lines end
    with CRLF, LF or a lone CR, also when a chunk ends between the CR and the LF.
    """

    def __init__(self) -> None:
        self._decoder = SseDecoder()
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._started = False

    def feed(self, chunk: bytes, *, final: bool = False) -> list[ServerSentEvent]:
        """Take the next bytes; return the events they complete (``final``: the stream ended)."""
        text = self._text.decode(chunk, final)
        if not self._started and text:
            text = text.removeprefix("\ufeff")
            self._started = True
        self._buffer += text
        events: list[ServerSentEvent] = []
        while match := _LINE_END.search(self._buffer):
            if match.group() == "\r" and match.end() == len(self._buffer) and not final:
                break  # a CR at the end may be the first half of a CRLF: wait for more
            line, self._buffer = self._buffer[: match.start()], self._buffer[match.end() :]
            if (event := self._decoder.feed(line)) is not None:
                events.append(event)
        return events
