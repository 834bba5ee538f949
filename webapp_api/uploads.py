"""Streaming multipart/form-data for uploads: the file part is handed on chunk by chunk as the
body arrives, so that nothing (neither Starlette's form parser nor this code) holds an upload
in memory or spools it before its size is checked."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from core.errors import BadRequest, PayloadTooLarge, Unprocessable, UnsupportedMediaType

FILE_FIELD = "file"
MAX_FIELDS = 16
MAX_FIELD_BYTES = 1024
# Room for the multipart framing and the small fields around the file.
BODY_OVERHEAD_BYTES = 64 * 1024


class MultipartUpload:
    """One request's multipart body: `file_chunks()` yields the bytes of the `file` field; the
    other fields and the file's name are known once it is exhausted."""

    def __init__(self, request: Request, max_file_bytes: int) -> None:
        content_type, options = parse_options_header(request.headers.get("content-type"))
        boundary = options.get(b"boundary")
        if content_type != b"multipart/form-data" or not boundary:
            raise UnsupportedMediaType(
                f"Send the file as multipart/form-data in the field '{FILE_FIELD}'",
                code="multipart_required",
            )
        self.max_body_bytes = max_file_bytes + BODY_OVERHEAD_BYTES
        declared_length = request.headers.get("content-length", "")
        if declared_length.isdigit() and int(declared_length) > self.max_body_bytes:
            raise _too_large(max_file_bytes)
        self.max_file_bytes = max_file_bytes
        self.filename: str | None = None
        self.fields: dict[str, str] = {}
        self._request = request
        self._has_file = False
        self._finished = False
        self._file_data: list[bytes] = []
        self._headers: dict[bytes, bytes] = {}
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._part: str | None = None
        self._field_value = bytearray()
        try:
            self._parser = MultipartParser(
                boundary,
                callbacks={
                    "on_part_begin": self._on_part_begin,
                    "on_header_field": self._on_header_field,
                    "on_header_value": self._on_header_value,
                    "on_header_end": self._on_header_end,
                    "on_headers_finished": self._on_headers_finished,
                    "on_part_data": self._on_part_data,
                    "on_part_end": self._on_part_end,
                    "on_end": self._on_end,
                },
            )
        except FormParserError as exc:
            raise BadRequest("The multipart boundary is invalid", code="multipart_invalid") from exc

    async def file_chunks(self) -> AsyncGenerator[bytes, None]:
        received = 0
        try:
            async for chunk in self._request.stream():
                received += len(chunk)
                if received > self.max_body_bytes:
                    raise _too_large(self.max_file_bytes)
                self._parser.write(chunk)
                if self._file_data:
                    data = b"".join(self._file_data)
                    self._file_data.clear()
                    yield data
        except FormParserError as exc:
            raise BadRequest("The multipart body is malformed", code="multipart_invalid") from exc
        except ClientDisconnect as exc:
            raise BadRequest("The upload was interrupted", code="upload_interrupted") from exc
        if not self._finished:
            raise BadRequest("The multipart body ended early", code="multipart_incomplete")
        if not self._has_file:
            raise Unprocessable(
                f"Send the file in the multipart field '{FILE_FIELD}'", code="file_missing"
            )

    def _on_part_begin(self) -> None:
        self._headers.clear()
        self._part = None
        self._field_value.clear()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[bytes(self._header_name).lower()] = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        disposition, options = parse_options_header(self._headers.get(b"content-disposition"))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if disposition != b"form-data" or not name:
            return
        if name == FILE_FIELD:
            if self._has_file:
                raise BadRequest("Send one file per upload", code="multiple_files")
            self._has_file = True
            # Browsers send the name as raw UTF-8; the parser hands it over byte for byte.
            self.filename = options.get(b"filename", b"").decode("utf-8", "replace") or None
            if self.filename is not None and "\x00" in self.filename:
                raise Unprocessable("The file name may not contain NUL", code="filename_invalid")
        elif len(self.fields) >= MAX_FIELDS:
            raise BadRequest("Too many form fields", code="too_many_fields")
        self._part = name

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part == FILE_FIELD:
            self._file_data.append(data[start:end])
        elif self._part is not None:
            self._field_value += data[start:end]
            if len(self._field_value) > MAX_FIELD_BYTES:
                raise BadRequest(
                    f"The form field '{self._part}' is too long", code="field_too_long"
                )

    def _on_part_end(self) -> None:
        if self._part is not None and self._part != FILE_FIELD:
            self.fields[self._part] = self._field_value.decode("utf-8", "replace")

    def _on_end(self) -> None:
        self._finished = True


def _too_large(max_file_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The file is larger than {max_file_bytes} bytes",
        code="file_too_large",
        max_bytes=max_file_bytes,
    )
