from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.media.conftest import ServerFactory, stored_files, upload

LIMIT = 4096


@pytest.mark.parametrize(("size", "status"), [(LIMIT - 1, 200), (LIMIT, 200), (LIMIT + 1, 413)])
async def test_the_size_limit_is_exact(media_server: ServerFactory, size: int, status: int) -> None:
    async with media_server(max_upload_bytes=LIMIT) as served:
        user = await served.sign_up(401, "Sam")
        response = await upload(user, b"x" * size, "notes.txt")
        files = stored_files(served.settings.media_dir)
    assert response.status_code == status, response.text
    if status == 413:
        assert response.json()["code"] == "file_too_large"
        assert files == []
    else:
        assert response.json()["size"] == size
        assert [path.read_bytes() for path in files] == [b"x" * size]


async def test_a_streamed_body_is_cut_off_at_the_limit(media_server: ServerFactory) -> None:
    """Sent chunked, without a Content-Length to refuse it by: counted while it streams."""
    boundary = "limit-test-boundary"

    async def body() -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"'
            "\r\nContent-Type: application/octet-stream\r\n\r\n"
        ).encode()
        for _ in range(LIMIT // 1024 + 1):
            yield b"y" * 1024
        yield f"\r\n--{boundary}--\r\n".encode()

    async with media_server(max_upload_bytes=LIMIT) as served:
        user = await served.sign_up(402, "Kim")
        response = await served.client.post(
            "/api/v1/media",
            content=body(),
            headers={**user.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        files = stored_files(served.settings.media_dir)
    assert response.status_code == 413
    assert files == []


async def test_a_declared_length_far_over_the_limit_is_refused_before_reading(
    media_server: ServerFactory,
) -> None:
    async with media_server(max_upload_bytes=LIMIT) as served:
        user = await served.sign_up(403, "Lee")
        response = await upload(user, b"z" * (LIMIT + 70_000), "huge.bin")
        files = stored_files(served.settings.media_dir)
    assert response.status_code == 413
    assert files == []
