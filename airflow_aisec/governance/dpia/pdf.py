"""The DPIA document as a PDF (fpdf2, the ``governance`` extra): the same blocks as the Markdown and HTML.

The PDF uses the core Helvetica font, which needs no font file and covers Latin-1; any other character is
written as its nearest Latin-1 form, or ``?``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_aisec.exceptions import ConfigError
from airflow_aisec.governance.dpia.document import Block, Bullets, Heading, Paragraph, Table, document

if TYPE_CHECKING:
    from fpdf import FPDF

    from airflow_aisec.governance.dpia.model import Assessment

_PLAIN = str.maketrans(
    {"×": "x", "–": "-", "—": "-", "≥": ">=", "≤": "<=", "’": "'", "“": '"', "”": '"', "…": "..."}
)
_SIZES = {1: 18, 2: 14, 3: 11}


def _latin1(text: str) -> str:
    return text.translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")


def to_pdf(assessment: Assessment) -> bytes:
    """The DPIA as PDF bytes; ``ConfigError`` when fpdf2 (``airflow-aisec[governance]``) is not installed."""
    try:
        from fpdf import FPDF
    except ImportError:
        raise ConfigError(
            "the PDF needs fpdf2: pip install 'airflow-aisec[governance]' (or choose --format md,html,cnil)"
        ) from None
    pdf = FPDF(orientation="landscape", format="A4")
    pdf.set_title("Data protection impact assessment")
    pdf.set_creator("airflow-aisec")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    for block in document(assessment):
        _block(pdf, block)
    return bytes(pdf.output())


def _block(pdf: FPDF, block: Block) -> None:
    if isinstance(block, Heading):
        pdf.set_font("Helvetica", "B", _SIZES.get(block.level, 11))
        pdf.ln(2)
        pdf.multi_cell(0, 8, _latin1(block.text), new_x="LMARGIN", new_y="NEXT")
    elif isinstance(block, Paragraph):
        pdf.set_font("Helvetica", "", 9)
        pdf.multi_cell(0, 5, _latin1(block.text), new_x="LMARGIN", new_y="NEXT")
    elif isinstance(block, Bullets):
        pdf.set_font("Helvetica", "", 9)
        for item in block.items:
            pdf.multi_cell(0, 5, _latin1(f"- {item}"), new_x="LMARGIN", new_y="NEXT")
    else:
        _table(pdf, block)
    pdf.ln(1)


def _table(pdf: FPDF, table: Table) -> None:
    pdf.set_font("Helvetica", "", 8)
    with pdf.table(line_height=4.5, text_align="LEFT", padding=1) as out:
        for row in (table.headers, *table.rows):
            cells = out.row()
            for cell in row:
                cells.cell(_latin1(cell))
