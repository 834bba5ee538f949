"""Billing's settings: defaults, and BILLING_PACKAGES checked before the server starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import DEFAULT_STAR_PACKAGES, Settings, StarPackage


def test_billing_is_on_by_default_with_a_starting_grant_and_two_packages(
    no_env_file: Path,
) -> None:
    settings = Settings()
    assert settings.billing_enabled is True
    assert settings.billing_starting_grant_micros == 1_000_000
    assert settings.billing_daily_free_micros == 0
    assert settings.billing_packages == DEFAULT_STAR_PACKAGES


def test_packages_are_read_from_json(no_env_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "BILLING_PACKAGES", '[{"id":"tiny","stars":1,"credits_micros":10000,"title":"A taste"}]'
    )
    assert Settings().billing_packages == (
        StarPackage(id="tiny", stars=1, credits_micros=10_000, title="A taste"),
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("not json", "Invalid JSON"),
        ('{"id":"small"}', "valid array"),
        ('[{"id":"Big One","stars":0,"credits_micros":1,"title":"x"}]', "0.id: String should"),
        ('[{"id":"a","stars":1,"credits_micros":1,"title":"x","extra":1}]', "0.extra"),
        (
            '[{"id":"a","stars":1,"credits_micros":1,"title":"x"},'
            '{"id":"a","stars":2,"credits_micros":2,"title":"y"}]',
            "more than once",
        ),
    ],
)
def test_bad_packages_are_refused_naming_the_variable(
    no_env_file: Path, monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    monkeypatch.setenv("BILLING_PACKAGES", value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert "BILLING_PACKAGES" in str(refused.value)
    assert problem in str(refused.value)
