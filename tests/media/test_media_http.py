from __future__ import annotations

import pytest

from webapp_api.media_http import RangeNotSatisfiable, byte_range, content_disposition


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, 999)),
        ("bytes=-1", (999, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=990-5000", (990, 999)),
        (None, None),
        ("", None),
        ("bytes=0-1,4-5", None),
        ("bytes=5-1", None),
        ("bytes=a-b", None),
        ("bytes=-", None),
        ("lines=0-1", None),
        ("bytes=١-٢", None),
        ("bytes=" + "9" * 100 + "-", None),
    ],
)
def test_a_single_range_is_served_and_anything_odd_gets_the_whole_file(
    header: str | None, expected: tuple[int, int] | None
) -> None:
    assert byte_range(header, 1000) == expected


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=1000-", 1000), ("bytes=-0", 1000), ("bytes=-5", 0)]
)
def test_a_range_past_the_end_cannot_be_satisfied(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        byte_range(header, size)


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("report.pdf", "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"),
        (
            "отчёт 2024.pdf",
            'attachment; filename="_____ 2024.pdf"; '
            "filename*=UTF-8''%D0%BE%D1%82%D1%87%D1%91%D1%82%202024.pdf",
        ),
        (
            'a"b\\c;d%.txt',
            "attachment; filename=\"a_b_c_d_.txt\"; filename*=UTF-8''a%22b%5Cc%3Bd%25.txt",
        ),
        ("日本", "attachment; filename=\"__\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC"),
    ],
)
def test_content_disposition_has_an_ascii_fallback_and_the_utf8_name(
    filename: str, expected: str
) -> None:
    assert content_disposition("attachment", filename) == expected
