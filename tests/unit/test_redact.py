"""Registered secrets are masked in every form a server may echo, whatever their length."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import pytest

from steps import redact as redact_module
from steps.redact import MASK, redact, register_credentials, register_secret


@pytest.fixture(autouse=True)
def isolated_secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test registers its own secrets; short ones must not leak into other tests."""
    monkeypatch.setattr(redact_module, "_forms", set())
    monkeypatch.setattr(redact_module, "_short", set())
    monkeypatch.setattr(redact_module, "_longest_first", None)
    monkeypatch.setattr(redact_module, "_pattern", None)
    yield
    monkeypatch.setattr(redact_module, "_longest_first", None)
    monkeypatch.setattr(redact_module, "_pattern", None)


def _forms(user: str, password: str) -> dict[str, str]:
    pair = f"{user}:{password}".encode()
    return {
        "raw": password,
        "quote": quote(password, safe=""),
        "quote-keep-slash": quote(password),
        "quote_plus": quote_plus(password),
        "json": json.dumps(password)[1:-1],
        "base64 pair": base64.b64encode(pair).decode(),
        "base64 pair unpadded": base64.b64encode(pair).decode().rstrip("="),
        "base64 password": base64.b64encode(password.encode()).decode(),
        "urlsafe base64 password": base64.urlsafe_b64encode(password.encode()).decode(),
    }


@pytest.mark.parametrize(
    "password", ['s3cr3t/p@ss w0rd+"quoted"', "pässwörd-ünïcode", "tok_" + "x" * 60]
)
def test_every_form_of_a_long_secret_is_masked_anywhere(password: str) -> None:
    register_credentials("alga-ci", password)
    for name, form in _forms("alga-ci", password).items():
        text = f"registry said: unauthorized{form}trailing"
        assert form not in redact(text), name
        assert MASK in redact(text), name


@pytest.mark.parametrize("password", ["Q", "x9", "a&b"])
def test_a_short_secret_is_masked_where_credentials_are_written(password: str) -> None:
    register_credentials("alga-ci", password)
    quoted = quote(password, safe="")
    echoed = [
        f"password={quoted}&user=alga-ci",
        f'{{"user": "alga-ci", "password": "{password}"}}',
        f"invalid password {password} for alga-ci",
        f"password: {password}",
        f"the password is {password}.",
        f"https://alga-ci:{quoted}@registry.example/v2/",
        f"token '{password}' refused",
        "Basic " + base64.b64encode(f"alga-ci:{password}".encode()).decode(),
    ]
    for text in echoed:
        cleaned = redact(text)
        assert MASK in cleaned, text
        # Nothing of the secret's forms survives next to its context.
        assert f"={quoted}&" not in cleaned and f'"{password}"' not in cleaned
        assert base64.b64encode(f"alga-ci:{password}".encode()).decode() not in cleaned


def test_a_short_secret_does_not_garble_ordinary_text() -> None:
    register_secret("a")
    register_secret("is")
    text = "a registry is a server; this is all Alga PSA has"
    assert redact(text) == text
    # ... but it is masked where it stands as a value.
    assert redact('password="a" user=is') == 'password="***" user=***'


def test_redaction_masks_secrets_registered_after_a_first_call() -> None:
    assert redact("nothing yet") == "nothing yet"
    register_secret("late-secret-value")
    assert redact("x late-secret-value y") == f"x {MASK} y"


def test_empty_and_none_are_ignored() -> None:
    register_secret("")
    register_secret(None)
    assert redact("= : ''") == "= : ''"


def test_a_secret_inside_a_longer_one_leaves_nothing_of_either() -> None:
    register_secret("tok-abcdef-0123456789")
    register_secret("abcdef")  # part of the first one
    text = "a tok-abcdef-0123456789 b abcdef c"
    assert redact(text) == f"a {MASK} b {MASK} c"


def test_long_and_short_secrets_in_one_text_are_all_masked() -> None:
    register_credentials("alga-ci", "x9")
    register_secret("bearer-token-value-1234")
    cleaned = redact("password=x9 then bearer-token-value-1234, user alga-ci:x9")
    assert cleaned == f"password={MASK} then {MASK}, user {MASK}"


def test_many_bearer_tokens_are_each_masked_and_no_pattern_is_built_for_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A publish against a token registry registers a token per scope (some ten forms
    each); every one is masked, in every form, without a regular expression built of them
    (one alternation of them all, rebuilt on every new token, cost seconds of a run)."""
    compiled: list[str] = []
    real_compile = redact_module.re.compile

    def counting_compile(pattern: str, *args: object) -> object:
        compiled.append(pattern)
        return real_compile(pattern, *args)

    monkeypatch.setattr(redact_module.re, "compile", counting_compile)
    tokens = [f"eyJhbGciOiJSUzI1NiJ9.{i:04d}." + "Q" * 600 for i in range(300)]
    for token in tokens:
        register_secret(token)
        assert redact(f"Authorization: Bearer {token}") == f"Authorization: Bearer {MASK}"
    for token in tokens[::37]:
        encoded = base64.b64encode(token.encode()).decode()
        assert redact(f"echo {quote(token, safe='')} {encoded}.") == f"echo {MASK} {MASK}."
    assert compiled == []
