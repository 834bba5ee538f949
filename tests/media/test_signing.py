from __future__ import annotations

import pytest

from core.errors import Forbidden
from core.signing import EXPIRY_STEP, MediaUrlSigner

SIGNER = MediaUrlSigner("a-secret-key-of-a-decent-length-for-tests", ttl=86400)
NOW = 1_800_000_100.0


def test_a_signed_url_verifies_until_it_expires() -> None:
    expires, signature = SIGNER.sign(7, now=NOW)
    SIGNER.verify(7, str(expires), signature, now=NOW)
    SIGNER.verify(7, str(expires), signature, now=expires)
    with pytest.raises(Forbidden) as raised:
        SIGNER.verify(7, str(expires), signature, now=expires + 1)
    assert raised.value.code == "media_url_expired"


def test_the_expiry_is_rounded_up_so_that_urls_stay_the_same_for_a_while() -> None:
    expires, signature = SIGNER.sign(7, now=NOW)
    assert NOW + SIGNER.ttl <= expires < NOW + SIGNER.ttl + EXPIRY_STEP
    assert expires % EXPIRY_STEP == 0
    assert SIGNER.sign(7, now=NOW + 1) == (expires, signature)


@pytest.mark.parametrize(
    ("media_id", "expires", "signature"),
    [
        (8, None, None),
        (7, "", "x"),
        (7, "+1800090000", None),
        (7, "1800090000.0", None),
        (7, "٣", None),
        (7, "9" * 5000, None),
        (7, None, ""),
    ],
)
def test_anything_but_our_signature_is_refused(
    media_id: int, expires: str | None, signature: str | None
) -> None:
    good_expires, good_signature = SIGNER.sign(7, now=NOW)
    with pytest.raises(Forbidden) as raised:
        SIGNER.verify(
            media_id,
            str(good_expires) if expires is None else expires,
            good_signature if signature is None else signature,
            now=NOW,
        )
    assert raised.value.code == "media_signature_invalid"


def test_another_key_signs_differently() -> None:
    other = MediaUrlSigner("another-secret-key-of-a-decent-length", ttl=86400)
    expires, signature = other.sign(7, now=NOW)
    with pytest.raises(Forbidden):
        SIGNER.verify(7, str(expires), signature, now=NOW)
