"""Text from a .docx upload, with the standard library only (a .docx is a zip of XML)."""

from __future__ import annotations

import io
import zipfile
from xml.etree import ElementTree

from service.errors import CallerError

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MAX_XML_BYTES = 20 * 1024 * 1024


def docx_text(data: bytes) -> str:
    """Paragraph texts joined by blank lines; ``CallerError`` for anything that is not a .docx."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            info = archive.getinfo("word/document.xml")
            if info.file_size > _MAX_XML_BYTES:
                raise CallerError("the .docx document is too large to read")
            root = ElementTree.fromstring(archive.read(info))
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError) as exc:
        raise CallerError("the file is not a readable .docx document") from exc
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
