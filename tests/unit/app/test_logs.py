"""Log lines as an operator's tools read them: ISO-8601 times, one line per record, JSON fields when asked."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime

import pytest

from interlude.app.logs import configure_logging

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00 ")


@pytest.fixture
def root_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)


def test_text_lines_start_with_an_iso_time_and_never_wrap(root_restored: None) -> None:
    out = io.StringIO()
    configure_logging("text", stream=out)
    logging.getLogger("interlude.test").info("x" * 300)
    line = out.getvalue()
    assert ISO.match(line), line
    assert line.count("\n") == 1 and line.rstrip().endswith("x" * 300)
    assert " INFO interlude.test: " in line


def test_json_lines_carry_the_record_fields(root_restored: None) -> None:
    out = io.StringIO()
    configure_logging("json", stream=out)
    logging.getLogger("interlude.access").info("GET / 200", extra={"status": 200, "requestId": "abc"})
    record = json.loads(out.getvalue())
    assert record["message"] == "GET / 200"
    assert record["level"] == "INFO" and record["logger"] == "interlude.access"
    assert record["status"] == 200 and record["requestId"] == "abc"
    assert datetime.fromisoformat(record["timestamp"]).utcoffset() is not None


def test_third_party_info_is_quiet_unless_verbose(root_restored: None) -> None:
    out = io.StringIO()
    configure_logging("text", stream=out)
    logging.getLogger("asyncssh").info("connection opened")
    assert out.getvalue() == ""
    configure_logging("text", verbose=True, stream=out)
    logging.getLogger("asyncssh").info("connection opened")
    assert "connection opened" in out.getvalue()


def test_an_unknown_format_is_refused(root_restored: None) -> None:
    with pytest.raises(ValueError, match="xml"):
        configure_logging("xml")
