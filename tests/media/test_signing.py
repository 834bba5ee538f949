from __future__ import annotations

import time

import pytest

from core.errors import Forbidden
from core.signing import MediaUrls, MediaUrlSigner, media_path

SIGNER = MediaUrlSigner("a-secret-key-of-a-decent-length-for-tests", ttl=3600)
NOW = 1_800_000_100.0
PHOTO = media_path(7)


def test_a_signed_url_verifies_until_it_expires() -> None:
    expires, signature = SIGNER.sign(PHOTO, now=NOW)
    SIGNER.verify(PHOTO, str(expires), signature, now=NOW)
    SIGNER.verify(PHOTO, str(expires), signature, now=expires)
    with pytest.raises(Forbidden) as raised:
        SIGNER.verify(PHOTO, str(expires), signature, now=expires + 1)
    assert raised.value.code == "media_url_expired"


def test_a_url_lives_at_most_the_ttl_and_at_least_three_quarters_of_it() -> None:
    for offset in range(0, 2 * SIGNER.ttl, 97):
        now = NOW + offset
        expires, _ = SIGNER.sign(PHOTO, now=now)
        assert now + SIGNER.ttl * 3 / 4 <= expires <= now + SIGNER.ttl
        assert expires % (SIGNER.ttl // 4) == 0


def test_a_url_stays_the_same_within_a_quarter_of_the_ttl_and_changes_after() -> None:
    start = 1_800_000_000.0  # a multiple of 900: the start of a bucket
    first = SIGNER.sign(PHOTO, now=start)
    assert SIGNER.sign(PHOTO, now=start + 899) == first
    assert SIGNER.sign(PHOTO, now=start + 900) != first


def test_a_tiny_ttl_still_gives_a_future_expiry() -> None:
    signer = MediaUrlSigner(SIGNER.secret_key, ttl=1)
    expires, _ = signer.sign(PHOTO, now=NOW + 0.5)
    assert NOW + 0.5 < expires <= NOW + 1.5


def test_pinned_urls_keep_the_expiry_they_name_after_their_step_ends() -> None:
    """A page names its URLs' expiry in its ETag, then lists the URLs: they must agree even
    when the signing step ends in between."""
    urls = MediaUrls(MediaUrlSigner(SIGNER.secret_key, ttl=1), "").pinned()
    named = urls.expiry
    time.sleep(int(time.time()) + 1.05 - time.time())  # into the next one-second step
    assert urls.signer.expiry() != named
    assert urls.media(7).split("?exp=")[1].startswith(f"{named}&")
    assert f"?exp={named}&" in urls.thumbnail(7)


def test_the_signature_opens_only_the_path_it_was_made_for() -> None:
    thumbnail = media_path(7, thumbnail=True)
    expires, signature = SIGNER.sign(PHOTO, now=NOW)
    with pytest.raises(Forbidden) as raised:
        SIGNER.verify(thumbnail, str(expires), signature, now=NOW)
    assert raised.value.code == "media_signature_invalid"
    expires, signature = SIGNER.sign(thumbnail, now=NOW)
    with pytest.raises(Forbidden):
        SIGNER.verify(PHOTO, str(expires), signature, now=NOW)
    SIGNER.verify(thumbnail, str(expires), signature, now=NOW)


@pytest.mark.parametrize(
    ("path", "expires", "signature"),
    [
        (media_path(8), None, None),
        (PHOTO, "", "x"),
        (PHOTO, "+1800090000", None),
        (PHOTO, "1800090000.0", None),
        (PHOTO, "٣", None),
        (PHOTO, "9" * 5000, None),
        (PHOTO, None, ""),
    ],
)
def test_anything_but_our_signature_is_refused(
    path: str, expires: str | None, signature: str | None
) -> None:
    good_expires, good_signature = SIGNER.sign(PHOTO, now=NOW)
    with pytest.raises(Forbidden) as raised:
        SIGNER.verify(
            path,
            str(good_expires) if expires is None else expires,
            good_signature if signature is None else signature,
            now=NOW,
        )
    assert raised.value.code == "media_signature_invalid"


def test_another_key_signs_differently() -> None:
    other = MediaUrlSigner("another-secret-key-of-a-decent-length", ttl=3600)
    expires, signature = other.sign(PHOTO, now=NOW)
    with pytest.raises(Forbidden):
        SIGNER.verify(PHOTO, str(expires), signature, now=NOW)
