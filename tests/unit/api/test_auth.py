"""Token files: both formats, secret references, and a clear error for every mistake (never a token value)."""

from __future__ import annotations

from pathlib import Path

import pytest

from interlude.api.auth import OPERATOR, load_tokens
from interlude.errors import ConfigError
from interlude.topology.loader import bundled_topology_path, load_topology
from interlude.topology.model import Topology

ALPHA_TOKEN = "alpha-0123456789abcdef"
BETA_TOKEN = "beta-0123456789abcdef"


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load_topology(bundled_topology_path())


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tokens.yaml"
    path.write_text(text)
    return path


def test_plain_mapping(tmp_path: Path, topology: Topology) -> None:
    table = load_tokens(write(tmp_path, f"{ALPHA_TOKEN}: sp-alpha\n{BETA_TOKEN}: sp-beta\n"), topology)
    assert len(table) == 2
    assert table.caller(ALPHA_TOKEN) == "sp-alpha"
    assert table.caller(BETA_TOKEN) == "sp-beta"
    assert table.caller("alpha-0123456789abcdeX") is None
    assert ALPHA_TOKEN not in repr(table)  # only digests are kept


def test_list_with_secret_references(tmp_path: Path, topology: Topology) -> None:
    (tmp_path / "beta.token").write_text(BETA_TOKEN + "\n")
    text = (
        "- {buyer: sp-alpha, token: {env: ALPHA_TOKEN}}\n"
        "- {buyer: sp-beta, token: {file: beta.token}}\n"
        "- {buyer: operator, token: ops-0123456789abcdef}\n"
    )
    table = load_tokens(write(tmp_path, text), topology, env={"ALPHA_TOKEN": ALPHA_TOKEN})
    assert table.caller(ALPHA_TOKEN) == "sp-alpha"
    assert table.caller(BETA_TOKEN) == "sp-beta"  # the file's trailing newline is not part of the token
    assert table.caller("ops-0123456789abcdef") == OPERATOR


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"{ALPHA_TOKEN}: sp-gamma\n", "unknown buyer"),
        ("short: sp-alpha\n", "at least 16 characters"),
        (f"- {{buyer: sp-alpha, token: {ALPHA_TOKEN}}}\n- {{buyer: sp-beta, token: {ALPHA_TOKEN}}}\n", "twice"),
        ("- {buyer: sp-alpha, token: {env: NOT_SET_ANYWHERE}}\n", "env:NOT_SET_ANYWHERE is not set"),
        ("- {buyer: sp-alpha, token: {env: A, file: b}}\n", "exactly one"),
        ("- {buyer: sp-alpha}\n", "expected {buyer"),
        ("{}\n", "no tokens"),
        ("just a string\n", "expected a mapping"),
        ("a: [b\n", "not valid YAML"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, topology: Topology, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("{", r"\{")) as info:
        load_tokens(write(tmp_path, text), topology, env={})
    assert ALPHA_TOKEN not in str(info.value)


def test_missing_file(tmp_path: Path, topology: Topology) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_tokens(tmp_path / "absent.yaml", topology)
