"""Compose's interpolation (reconciler/compose/interpolate.py): every form, `.env` files,
and the mail-suite examples of issue 18."""

from __future__ import annotations

import pytest

from reconciler.compose.interpolate import InterpolationError, interpolate_document, parse_env_file, substitute
from reconciler.compose.reader import environment_for, parse_compose

ENV = {"SET": "value", "EMPTY": "", "PORT": "8443", "NET": "172.22.7"}


@pytest.mark.parametrize("template, expected", [
    ("plain", "plain"),
    ("${SET}", "value"),
    ("$SET", "value"),
    ("$SET.suffix", "value.suffix"),
    ("pre-${SET}-post", "pre-value-post"),
    ("${UNSET}", ""),
    ("$UNSET", ""),
    ("${SET:-default}", "value"),
    ("${EMPTY:-default}", "default"),
    ("${UNSET:-default}", "default"),
    ("${SET-default}", "value"),
    ("${EMPTY-default}", ""),  # set, if empty: no default
    ("${UNSET-default}", "default"),
    ("${SET:?needed}", "value"),
    ("${SET?needed}", "value"),
    ("${EMPTY?needed}", ""),  # set, if empty: no error
    ("${SET:+alt}", "alt"),
    ("${EMPTY:+alt}", ""),
    ("${EMPTY+alt}", "alt"),
    ("${UNSET+alt}", ""),
    ("$$", "$"),
    ("$$SET", "$SET"),
    ("$${SET}", "${SET}"),
    ("cost: $$5", "cost: $5"),
    ("${UNSET:-${SET}}", "value"),  # a default that interpolates
    ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
    ("${UNSET:-a}${SET}", "avalue"),
    ("${UNSET:-}", ""),
    # the mail suite's forms (issue 18)
    ("${NET:-172.22.1}.254", "172.22.7.254"),
    ("${IPV4_NETWORK:-172.22.1}.254", "172.22.1.254"),
    ("${HTTPS_BIND:-}:${HTTPS_PORT:-443}:443", ":443:443"),
    ("${HTTPS_BIND:-}:${PORT:-443}:${PORT:-443}", ":8443:8443"),
])
def test_every_form(template, expected):
    assert substitute(template, ENV.get).text == expected


def test_unset_variables_without_default_are_reported():
    assert substitute("${A}-$B-${C:-x}-${SET}", ENV.get).unset == ["A", "B"]


@pytest.mark.parametrize("template, message", [
    ("${UNSET:?set it in .env}", "required variable UNSET is missing a value: set it in .env"),
    ("${EMPTY:?must not be empty}", "required variable EMPTY is missing a value: must not be empty"),
    ("${UNSET?gone}", "required variable UNSET is missing a value: gone"),
    ("${UNSET:?}", "required variable UNSET is missing a value"),
    ("${UNSET:?${SET} needed}", "required variable UNSET is missing a value: value needed"),
    ("${", "is not closed"),
    ("${SET", "is not closed"),
    ("${}", "invalid interpolation format"),
    ("${1A}", "invalid interpolation format"),
    ("${SET%x}", "invalid interpolation format"),
    ("$1", "invalid interpolation format"),
    ("50$", "invalid interpolation format"),
])
def test_errors(template, message):
    with pytest.raises(InterpolationError, match=message.replace("$", r"\$").replace("{", r"\{")):
        substitute(template, ENV.get)


def test_a_required_variable_names_the_key_location_and_message():
    doc = parse_compose("services:\n  mail:\n    hostname: ${HOST:?set HOST in .env}\n", "compose.yaml")
    with pytest.raises(InterpolationError) as error:
        interpolate_document(doc, {})
    assert str(error.value) == ("compose.yaml:3:15: services.mail.hostname: required variable HOST is missing a "
                                "value: set HOST in .env")


def test_values_are_interpolated_not_keys_and_unset_ones_are_noted():
    doc = parse_compose("services:\n  web:\n    ports: ['${P:-80}:80', '$${X}']\n"
                        "    extra_hosts: {'${K}': '${A}'}\n", "c.yaml")
    notes = interpolate_document(doc, {})
    assert doc.data["services"]["web"] == {"ports": ["80:80", "${X}"], "extra_hosts": {"${K}": ""}}
    assert [str(note) for note in notes] == [
        'c.yaml:4:27: services.web.extra_hosts.${K}: the "A" variable is not set. Defaulting to a blank string.']


def test_env_file_forms():
    text = """# a comment
A=1
export B = two words  # a comment after a space
C='${A} stays literal'
D="line\\nbreak ${A}"
E=${A}-${B}
F=
G="quoted # not a comment"
H=${FROM_ENV:-x}
"""
    assert parse_env_file(text, ".env", {"FROM_ENV": "env"}) == {
        "A": "1", "B": "two words", "C": "${A} stays literal", "D": "line\nbreak 1", "E": "1-two words", "F": "",
        "G": "quoted # not a comment", "H": "env"}


@pytest.mark.parametrize("text, message", [
    ("A=1\nnot a line\n", r"\.env:2: 'not a line' is not a KEY=VALUE line"),
    ("A='open\n", r"\.env:1: A: a single quote is not closed"),
    ("A=${B:?needed}\n", r"\.env:1: A: required variable B is missing a value: needed"),
])
def test_env_file_errors_name_the_line(text, message):
    with pytest.raises(InterpolationError, match=message):
        parse_env_file(text, ".env", {})


def test_the_environment_wins_over_the_env_file_beside_the_compose_file(tmp_path):
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    (tmp_path / ".env").write_text("PORT=8080\nBIND=127.0.0.1\n")
    compose = str(tmp_path / "compose.yaml")
    assert environment_for(compose, None, {"PORT": "9090"}) == {"PORT": "9090", "BIND": "127.0.0.1"}
    other = tmp_path / "other.env"
    other.write_text("BIND=198.51.100.1\n")
    assert environment_for(compose, str(other), {}) == {"BIND": "198.51.100.1"}  # --env-file replaces .env
    (tmp_path / ".env").unlink()
    assert environment_for(compose, None, {"X": "1"}) == {"X": "1"}
