"""What the attachment tests share: files of each kind (their first bytes are what the type is
detected from) and a look at what storage holds (the ``attachment_root`` fixture is in
conftest.py)."""

from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

from messaging.models import Attachment
from messaging.services.attachments import attachment_upload

# A marker that must never be found in storage or in the database.
PLAIN_MARKER = b"DIAGNOSIS-HYPERTENSION-STAGE-2"

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Note (" + PLAIN_MARKER + b") >> endobj\n" + b"0" * (150 * 1024)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64
GIF = b"GIF89a" + b"\x00" * 64
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 64
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
OGG = b"OggS\x00\x02" + b"\x00" * 64
MP3 = b"ID3\x03\x00\x00\x00" + b"\x00" * 64
M4A = b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00" + b"\x00" * 64
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 64
WEBM = (
    b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08\x42\x82\x84webm"
    + b"\x00" * 64
)
ELF = b"\x7fELF\x02\x01\x01" + b"\x00" * 64
WINDOWS_EXE = b"MZ\x90\x00\x03" + b"\x00" * 64


def stored_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


def upload(owner, content: bytes = PDF, name: str = "results.pdf", **target) -> Attachment:
    return attachment_upload(owner=owner, file=SimpleUploadedFile(name, content), **target)


def multipart(content: bytes, name: str = "results.pdf", content_type: str = "application/pdf", **fields) -> dict:
    """An APIClient ``post`` body of a multipart upload."""
    return {"file": SimpleUploadedFile(name, content, content_type=content_type), **fields}


def downloaded(response) -> bytes:
    return b"".join(response.streaming_content)
