"""Text from a .docx upload, with the standard library only (a .docx is a zip of XML)."""

from __future__ import annotations

import io
import zipfile
import zlib
from xml.etree import ElementTree

from service.errors import CallerError, UploadTooLargeError

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
MAX_XML_BYTES = 4 * 1024 * 1024
"""Decompressed size of word/document.xml. A 30,000-character essay needs well under 1 MB of XML;
a 58 KB zip that expands to 20 MB used to block for seconds and take 250 MB."""


def docx_text(data: bytes) -> str:
    """Paragraph texts joined by blank lines; ``CallerError`` for anything that is not a .docx.

    CPU-bound: async callers run it in a thread. The decompressed size is capped while reading,
    not taken from the zip header, which the uploader writes.
    """
    too_large = UploadTooLargeError(
        f"the .docx document's text expands to more than {MAX_XML_BYTES:,} bytes of XML; "
        "paste the essay as text or save it without embedded content"
    )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            info = archive.getinfo("word/document.xml")
            if info.file_size > MAX_XML_BYTES:
                raise too_large
            with archive.open(info) as member:
                xml = member.read(MAX_XML_BYTES + 1)
            if len(xml) > MAX_XML_BYTES:
                raise too_large
            root = ElementTree.fromstring(xml)
    # RuntimeError: an encrypted member, or an unsupported compression method (NotImplementedError).
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError, zlib.error, EOFError, ValueError, RuntimeError) as e:
        raise CallerError("the file is not a readable .docx document") from e
    paragraphs = []
    for paragraph in root.iter(f"{_W}p"):
        parts = []
        for node in paragraph.iter():
            if node.tag == f"{_W}t" and node.text:
                parts.append(node.text)
            elif node.tag == f"{_W}tab":
                parts.append("\t")
            elif node.tag in (f"{_W}br", f"{_W}cr"):
                parts.append("\n")
        paragraphs.append("".join(parts))
    return "\n\n".join(p for p in paragraphs if p.strip())
