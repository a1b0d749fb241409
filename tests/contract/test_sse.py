"""``SseDecoder`` against the WHATWG HTML standard, section 9.2 "Server-sent events".

Expected values are the standard's own: its example streams and the rules of "Interpreting
an event stream":

- a line starting with U+003A COLON is a comment and is ignored;
- a line with a colon: the field is what comes before the first colon, the value what comes
  after it, with one leading U+0020 SPACE removed (only one);
- a line without a colon: the whole line is the field name, the value is the empty string;
- ``data``: append the value and a U+000A LF to the data buffer; at dispatch the last LF is
  removed, so data lines are joined with "\\n";
- ``event``: set the event type buffer; an empty type buffer dispatches as ``message``;
- ``id``: set the last event ID buffer unless the value contains U+0000 NULL (then ignore
  the field); the buffer is not reset by a dispatch, so an id persists across events;
- any other field is ignored (field names are case-sensitive);
- a blank line dispatches: if the data buffer is empty, the data and event type buffers are
  reset and nothing is dispatched; the type buffer is reset after every dispatch;
- at the end of the stream a pending (unterminated) event is discarded.

The decoder takes lines; the standard's line ends are CRLF, LF or CR, so ``_decode`` splits
on those and drops the unterminated tail, which is how the standard treats the end of a stream.
The standard's last event ID string starts as the empty string; the decoder reports ``None``
until an ``id`` field is seen, which ``_last_id`` maps back to the standard's value.
"""

from __future__ import annotations

import re

from prepaid_meter_contract.sse import ServerSentEvent, SseDecoder

_LINE_END = re.compile(r"\r\n|\r|\n")


def _decode(stream: str, decoder: SseDecoder | None = None) -> list[ServerSentEvent]:
    """Feed a whole stream line by line; return every dispatched event."""
    decoder = decoder or SseDecoder()
    lines = _LINE_END.split(stream)
    lines.pop()  # after the last line end: an unterminated line, discarded at end of stream
    return [event for line in lines if (event := decoder.feed(line)) is not None]


def _last_id(event: ServerSentEvent) -> str:
    """The standard's ``lastEventId`` of a dispatched event (initially the empty string)."""
    return "" if event.id is None else event.id


def _summary(events: list[ServerSentEvent]) -> list[tuple[str, str, str]]:
    return [(e.event, e.data, _last_id(e)) for e in events]


# --------------------------------------------------------------------------- the spec's examples


def test_spec_example_stock_ticker_data_lines_join_with_newline() -> None:
    """9.2.6: "data: YHOO / data: +2 / data: 10" fires one message with "YHOO\\n+2\\n10"."""
    assert _summary(_decode("data: YHOO\ndata: +2\ndata: 10\n\n")) == [
        ("message", "YHOO\n+2\n10", "")
    ]


def test_spec_example_four_blocks_comment_ids_and_leading_space() -> None:
    """9.2.6: the stream with ": test stream" fires two events; the last block never fires.

    The first event has data "first event" and id "1"; the second "second event" and an ``id``
    field without value, which resets the last event ID to the empty string; the third block
    (data " third event", one space kept) is not followed by a blank line, so the end of the
    stream is not enough to dispatch it.
    """
    stream = (
        ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n"
    )
    assert _summary(_decode(stream)) == [
        ("message", "first event", "1"),
        ("message", "second event", ""),
    ]


def test_spec_example_four_blocks_last_block_fires_once_terminated() -> None:
    """The same stream followed by a blank line fires the third event: " third event"."""
    stream = (
        ": test stream\n\ndata: first event\nid: 1\n\n"
        "data:second event\nid\n\ndata:  third event\n\n"
    )
    events = _decode(stream)
    assert [e.data for e in events] == ["first event", "second event", " third event"]
    assert _last_id(events[2]) == ""  # reset by the second block's bare "id"


def test_spec_example_bare_data_fields() -> None:
    """9.2.6: "data" alone is an empty value; two bare "data" lines give a single newline.

    The first block fires an event with the empty string as data, the middle block one whose
    data is "\\n"; the last block ("data:" with no blank line after it) is discarded.
    """
    stream = "data\n\ndata\ndata\n\ndata:"
    assert _summary(_decode(stream)) == [("message", "", ""), ("message", "\n", "")]


def test_spec_example_one_leading_space_is_optional() -> None:
    """9.2.6: "data:test" and "data: test" both fire an event with data "test"."""
    assert [e.data for e in _decode("data:test\n\ndata: test\n\n")] == ["test", "test"]


def test_spec_example_named_events() -> None:
    """The standard's named-event example: ``event: add``/``remove`` blocks fire those types."""
    stream = (
        "event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n"
    )
    assert [(e.event, e.data) for e in _decode(stream)] == [
        ("add", "73857293"),
        ("remove", "2153"),
        ("add", "113411"),
    ]


# --------------------------------------------------------------------------- the rules


def test_comment_lines_are_ignored_and_dispatch_nothing() -> None:
    """Lines starting with a colon, even ``:data: x``, are comments; a comment block is empty."""
    assert _decode(":\n\n: keepalive\n\n:data: x\n\n") == []
    assert [e.data for e in _decode("data: a\n: between\ndata: b\n\n")] == ["a\nb"]


def test_only_one_leading_space_is_removed() -> None:
    """The value after the colon loses one U+0020 SPACE; a second one and tabs stay."""
    events = _decode("data:  two\n\ndata:\tx\n\ndata: \n\n")
    assert [e.data for e in events] == [" two", "\tx", ""]


def test_value_keeps_later_colons() -> None:
    """The field name ends at the first colon; the value keeps the rest verbatim."""
    assert [e.data for e in _decode('data: {"a": "b:c"}\n\n')] == ['{"a": "b:c"}']


def test_event_type_defaults_to_message_and_resets_after_dispatch() -> None:
    """An event without ``event`` is a ``message``; a type does not carry to the next event."""
    events = _decode("event: add\ndata: 1\n\ndata: 2\n\n")
    assert [(e.event, e.data) for e in events] == [("add", "1"), ("message", "2")]


def test_empty_event_field_means_message() -> None:
    """``event:`` with an empty value leaves the type buffer empty: the type is ``message``."""
    assert [e.event for e in _decode("event:\ndata: x\n\n")] == ["message"]


def test_block_without_data_is_not_dispatched_and_forgets_its_type() -> None:
    """A blank line with an empty data buffer dispatches nothing and resets the type buffer."""
    events = _decode("event: add\n\ndata: x\n\n")
    assert [(e.event, e.data) for e in events] == [("message", "x")]


def test_blank_lines_alone_dispatch_nothing() -> None:
    assert _decode("\n\n\n") == []


def test_unterminated_event_at_end_of_stream_is_discarded() -> None:
    assert _decode("data: a\n\ndata: b\n") == _decode("data: a\n\n")
    assert [e.data for e in _decode("data: a\n\ndata: b\n")] == ["a"]


def test_id_persists_across_events() -> None:
    """The last event ID buffer is not reset by a dispatch."""
    events = _decode("id: 7\ndata: a\n\ndata: b\n\nid: 8\ndata: c\n\ndata: d\n\n")
    assert [(e.data, _last_id(e)) for e in events] == [
        ("a", "7"),
        ("b", "7"),
        ("c", "8"),
        ("d", "8"),
    ]


def test_id_set_in_a_block_without_data_still_applies() -> None:
    """The id field is processed as its line is read, whether or not the block dispatches."""
    events = _decode("id: 5\n\ndata: x\n\n")
    assert [(e.data, _last_id(e)) for e in events] == [("x", "5")]


def test_id_is_the_value_after_one_space_and_may_be_any_text() -> None:
    events = _decode("id:  spaced\ndata: a\n\nid:abc-9\ndata: b\n\n")
    assert [_last_id(e) for e in events] == [" spaced", "abc-9"]


def test_id_containing_null_is_ignored() -> None:
    """An ``id`` value with U+0000 NULL is ignored: the previous last event ID stays."""
    events = _decode("id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\nid: \x00\ndata: c\n\n")
    assert [(e.data, _last_id(e)) for e in events] == [("a", "1"), ("b", "1"), ("c", "1")]


def test_id_with_null_before_any_id_leaves_it_empty() -> None:
    events = _decode("id: \x00\ndata: a\n\n")
    assert [_last_id(e) for e in events] == [""]


def test_no_id_seen_means_empty_last_event_id() -> None:
    event = _decode("data: a\n\n")[0]
    assert _last_id(event) == ""


def test_unknown_fields_are_ignored_and_names_are_case_sensitive() -> None:
    """``retry`` (no reconnection here), ``foo``, ``Data``, ``data `` and `` data`` do nothing."""
    stream = "retry: 1000\nfoo: bar\nData: X\nEVENT: y\ndata : z\n data: w\nid : 9\ndata: ok\n\n"
    assert _summary(_decode(stream)) == [("message", "ok", "")]


def test_line_ends_crlf_and_cr_are_lines_too() -> None:
    """The standard's line ends are CRLF, LF and CR; the decoder sees the same lines."""
    lf = _decode("event: add\ndata: 1\ndata: 2\n\n")
    assert _decode("event: add\r\ndata: 1\r\ndata: 2\r\n\r\n") == lf
    assert _decode("event: add\rdata: 1\rdata: 2\r\r") == lf
    assert _summary(lf) == [("add", "1\n2", "")]


def test_decoder_state_carries_between_feeds() -> None:
    """One decoder across several reads behaves as one stream (the id persists)."""
    decoder = SseDecoder()
    assert _summary(_decode("id: 3\ndata: a\n\n", decoder)) == [("message", "a", "3")]
    assert decoder.feed("data: b") is None
    assert decoder.feed("") == ServerSentEvent("message", "b", "3")


def test_ledger_frame_decodes_to_its_parts() -> None:
    """A frame as ``api/stream.format_event`` writes it: ``id``, ``event`` and one data line."""
    frame = 'id: 42\nevent: account.updated\ndata: {"id": 42, "account_id": 3}\n\n'
    assert _decode(frame) == [
        ServerSentEvent("account.updated", '{"id": 42, "account_id": 3}', "42")
    ]


def test_large_data_is_kept_whole() -> None:
    big = "x" * 1_000_000
    assert [len(e.data) for e in _decode(f"data: {big}\ndata: {big}\n\n")] == [2_000_001]
