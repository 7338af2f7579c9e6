"""Reading a multipart upload: one file streamed to disk, a few text fields, exactly.

Starlette's form parser decodes names and values that are not valid UTF-8 as
Latin-1, which silently garbles a GBK plan name or file name. This reader decodes
every field name, value and file name strictly (UTF-8, or the ``charset`` the request
declares) and refuses the request otherwise, so what is stored is what was sent. The
file goes straight to the upload folder in chunks, counted against the size limit.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from .errors import ApiError

#: Largest text field (bytes).
MAX_FIELD_BYTES = 64 * 1024
#: Most text fields.
MAX_FIELDS = 20


@dataclass
class UploadForm:
    """What a multipart upload held.

    Attributes
    ----------
    fields : dict of str to str
        Text fields (empty values included).
    filename : str or None
        The file's name as sent (None without a file).
    path : pathlib.Path or None
        Where the file was saved.
    size : int
        The file's size in bytes.
    complete : bool
        Whether the file's part ended (False for a body cut short).
    """

    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    path: Path | None = None
    size: int = 0
    complete: bool = False


class _Reader:
    """Callbacks for :class:`python_multipart.MultipartParser`."""

    def __init__(self, target: Path, file_field: str, max_bytes: int, charset: str):
        self.target = target
        self.file_field = file_field
        self.max_bytes = max_bytes
        self.charset = charset
        self.form = UploadForm()
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._name = ""
        self._is_file = False
        self._data = bytearray()
        self._fh: BinaryIO | None = None

    def decode(self, raw: bytes, what: str) -> str:
        try:
            return raw.decode(self.charset)
        except UnicodeDecodeError as exc:
            bad = raw[exc.start : exc.start + 4].hex(" ")
            raise ApiError(
                400,
                "bad_encoding",
                f"the {what} is not valid {self.charset} (bytes {bad} at position "
                f"{exc.start}); send UTF-8, or declare the charset in the Content-Type "
                "(multipart/form-data; charset=gbk; boundary=...)",
            ) from None

    def on_part_begin(self) -> None:
        self._disposition = b""
        self._data = bytearray()
        self._is_file = False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = b""
        self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise ApiError(
                400, "malformed_multipart", "a multipart part has no name (Content-Disposition)"
            )
        self._name = self.decode(options[b"name"], "field name")
        self._is_file = b"filename" in options
        if not self._is_file:
            if len(self.form.fields) >= MAX_FIELDS:
                raise ApiError(422, "too_many_fields", f"at most {MAX_FIELDS} form fields")
            return
        if self._name != self.file_field or self.form.filename is not None:
            raise ApiError(
                422,
                "unexpected_file",
                f"send exactly one file, as the field {self.file_field!r}",
            )
        self.form.filename = self.decode(options[b"filename"], "file name")
        self._fh = self.target.open("wb")
        self.form.path = self.target

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self.form.size += end - start
            if self.form.size > self.max_bytes:
                raise ApiError(
                    413,
                    "payload_too_large",
                    f"the upload exceeds {self.max_bytes / 1048576:g} MB (GRIDMAP_MAX_UPLOAD_MB)",
                )
            assert self._fh is not None
            self._fh.write(data[start:end])
            return
        if len(self._data) + end - start > MAX_FIELD_BYTES:
            raise ApiError(422, "field_too_large", f"form field {self._name[:40]!r} exceeds 64 KB")
        self._data += data[start:end]

    def on_part_end(self) -> None:
        if self._is_file:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
            self.form.complete = True
            return
        self.form.fields[self._name] = self.decode(bytes(self._data), f"field {self._name!r}")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


async def read_upload(
    headers: dict[str, str] | object,
    stream: AsyncIterator[bytes],
    target: Path,
    *,
    file_field: str = "file",
    max_bytes: int,
) -> UploadForm:
    """Read a ``multipart/form-data`` body: save the file to `target`, decode the rest.

    Parameters
    ----------
    headers : mapping
        Request headers (``content-type`` is needed).
    stream : async iterator of bytes
        The request body.
    target : pathlib.Path
        Where the file is written.
    file_field : str
        Name of the file field.
    max_bytes : int
        Largest file; 413 above.

    Raises
    ------
    ApiError
        400 for a body that is not multipart or not decodable, 413 for a file over
        the limit, 422 for a second file or too many fields.
    """
    ctype = headers.get("content-type", "")  # type: ignore[attr-defined]
    kind, params = parse_options_header(ctype)
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise ApiError(
            422,
            "missing_file",
            "send the footprints as multipart/form-data with the file in the field 'file'",
        )
    charset = params.get(b"charset", b"utf-8").decode("latin-1")
    try:
        charset = codecs.lookup(charset).name
    except LookupError:
        raise ApiError(400, "bad_encoding", f"unknown charset {charset[:40]!r}") from None
    reader = _Reader(target, file_field, max_bytes, charset)
    callbacks = {
        name: getattr(reader, name)
        for name in (
            "on_part_begin",
            "on_part_data",
            "on_part_end",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
        )
    }
    parser = MultipartParser(params[b"boundary"], callbacks)  # type: ignore[arg-type]
    try:
        async for chunk in stream:
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise ApiError(
            400, "malformed_multipart", f"the multipart body is malformed: {exc}"
        ) from None
    finally:
        reader.close()
    if reader.form.filename is not None and not reader.form.complete:
        raise ApiError(400, "malformed_multipart", "the body ended before the file was complete")
    return reader.form
