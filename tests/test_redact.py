"""Credentials are blanked out of any text: URL passwords, secret-named keys, known values."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ulm import redact as r


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    r._forget_all()
    yield
    r._forget_all()


@pytest.mark.parametrize(("text", "secret"), [
    ("cannot use store 'postgresql+asyncpg://ulm:PASSWORD@127.0.0.1:1/ulm': no module", "PASSWORD"),
    ("mysql://root:p@ss@db/x", "p@ss"),
    ("https://u:pw%40x@h:5/a?token=zz9&x=1", "pw%40x"),
    ("https://h/a?token=zz9&x=1", "zz9"),
    ("password=hunter22 user=x", "hunter22"),
    ('{"token": "abc123"}', "abc123"),
    ("Authorization: Bearer abcdef", "abcdef"),
    ("api_key: 'k-42'", "k-42"),
])
def test_secrets_are_blanked(text: str, secret: str) -> None:
    out = r.redact(text)
    assert secret not in out
    assert r.MASK in out


def test_the_rest_of_the_text_stays() -> None:
    assert r.redact("mysql://root:pw@db:3306/x failed") == "mysql://root:***@db:3306/x failed"
    plain = "postgresql+psycopg://postgres@/ulmtest?host=/tmp/s migrating web1 -> hv2"
    assert r.redact(plain) == plain


def test_remembered_values_are_blanked_in_any_form() -> None:
    assert "s3cr3t/v" in r.redact("BMC answered s3cr3t/v")
    r.remember("s3cr3t/v")
    assert r.redact("BMC answered s3cr3t/v") == "BMC answered ***"
    assert "s3cr3t" not in r.redact("url quoted s3cr3t%2Fv")
