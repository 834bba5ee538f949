from __future__ import annotations

from tests.media.conftest import ServerFactory, stored_files, upload, uploaded


async def test_uploads_past_the_storage_quota_are_refused(media_server: ServerFactory) -> None:
    async with media_server(media_quota_bytes=3000) as served:
        user = await served.sign_up(601, "Quinn")
        other = await served.sign_up(602, "Ola")
        await uploaded(user, b"a" * 2000)
        refused = await upload(user, b"b" * 1001)
        fits = await upload(user, b"c" * 1000)
        full = await upload(user, b"d")
        someone_else = await upload(other, b"e" * 2000)
        files = stored_files(served.settings.media_dir)
    assert refused.status_code == 413
    assert refused.json()["code"] == "media_quota_exceeded"
    assert (refused.json()["quota_bytes"], refused.json()["used_bytes"]) == (3000, 2000)
    assert fits.status_code == 200
    assert full.status_code == 413
    assert someone_else.status_code == 200
    assert sorted(path.read_bytes()[:1] for path in files) == [b"a", b"c", b"e"]


async def test_uploads_are_rate_limited_per_user(media_server: ServerFactory) -> None:
    async with media_server(media_uploads_per_minute=2) as served:
        user = await served.sign_up(603, "Rita")
        other = await served.sign_up(604, "Ron")
        statuses = [(await upload(user, f"{n}".encode())).status_code for n in range(3)]
        limited = await upload(user, b"again")
        other_status = (await upload(other, b"mine")).status_code
    assert statuses == [200, 200, 429]
    assert limited.json()["code"] == "upload_rate_limited"
    assert other_status == 200
