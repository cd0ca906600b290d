from pathlib import Path

import pytest

from indexer.loaders import LOADERS, LoaderError, load_file, load_medquad

pytestmark = pytest.mark.unit

DOC = """<?xml version="1.0" encoding="UTF-8"?>
<Document id="0000042" source="TestSource" url="https://example.org/gout">
<Focus>Gout</Focus>
<FocusAnnotations>
\t<UMLS>
\t\t<CUIs>
\t\t\t<CUI>C0018099</CUI>
\t\t\t<CUI>C0003868</CUI>
\t\t</CUIs>
\t\t<SemanticTypes><SemanticType>T047</SemanticType></SemanticTypes>
\t</UMLS>
</FocusAnnotations>
<QAPairs>
\t<QAPair pid="1">
\t\t\t<Question qid="0000042-1" qtype="information">What is (are) Gout ?</Question>
\t\t\t<Answer>Gout is a form of arthritis.
                    It causes sudden pain &amp; swelling.


                    Flares often start at night.</Answer>
\t</QAPair>
\t<QAPair pid="2">
\t\t\t<Question qid="0000042-2" qtype="treatment">What are the  treatments
 for Gout ?</Question>
\t\t\t<Answer />
\t</QAPair>
\t<QAPair pid="3">
\t\t\t<Question qid="0000042-3" qtype="treatment">How to treat Gout ?</Question>
\t\t\t<Answer>  Colchicine or NSAIDs treat flares.  </Answer>
\t</QAPair>
</QAPairs>
</Document>
"""


def write(tmp_path: Path, text: str, name: str = "0000042.xml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_one_document_with_a_section_per_answered_pair(tmp_path):
    doc = load_medquad(write(tmp_path, DOC), "mq/0000042")
    assert doc.doc_id == "mq/0000042"
    assert (doc.title, doc.organisation, doc.url) == ("Gout", "TestSource", "https://example.org/gout")
    assert doc.extra == {"cuis": "C0018099,C0003868", "medquad_id": "0000042"}
    assert [s.path for s in doc.sections] == [("Gout", "What is (are) Gout ?"), ("Gout", "How to treat Gout ?")]
    bodies = [doc.text[s.body_start : s.body_end] for s in doc.sections]
    assert bodies == [
        "Gout is a form of arthritis.\nIt causes sudden pain & swelling.\n\nFlares often start at night.",
        "Colchicine or NSAIDs treat flares.",
    ]
    # Each pair is a "question\n\nanswer" block; questions are in the text but in no section body.
    assert doc.text == f"What is (are) Gout ?\n\n{bodies[0]}\n\nHow to treat Gout ?\n\n{bodies[1]}"


def test_lower_case_doc_variant_and_empty_focus(tmp_path):
    xml = """<?xml version="1.0"?>
<doc docid="0000007" corpus="NINDS" url="https://example.org/has">
<doctitle-focus></doctitle-focus>
<umls><cui></cui></umls>
<qaPairs><pair pid="1"><question qid="0000007-1">what is it ?</question><answer>A disorder.</answer></pair></qaPairs>
</doc>"""
    doc = load_medquad(write(tmp_path, xml, name="0000007.xml"), "mq/7")
    assert doc.title == "0000007"  # no focus: the file name, as other loaders do without a title
    assert doc.organisation == "NINDS" and "cuis" not in doc.extra
    [section] = doc.sections
    assert section.path == ("0000007", "what is it ?")
    assert doc.text[section.body_start : section.body_end] == "A disorder."


@pytest.mark.parametrize(
    ("xml", "reason"),
    [
        ("<Document><Focus>Gout</Focus><QAPairs>", "malformed XML"),
        ('<?xml version="1.0" encoding="bogus"?><Document/>', "malformed XML"),
        ("<rss><channel><title>News</title></channel></rss>", "not MedQuAD XML"),
        ('<!DOCTYPE d [<!ENTITY x "boom">]><Document><Focus>&x;</Focus></Document>', "DTD"),
        ("<Document><Focus>Gout</Focus><QAPairs/></Document>", "no question-answer pair"),
    ],
)
def test_malformed_or_foreign_xml_is_a_loader_error(tmp_path, xml, reason):
    with pytest.raises(LoaderError, match=reason):
        load_medquad(write(tmp_path, xml), "mq/bad")


def test_empty_file_is_a_loader_error(tmp_path):
    with pytest.raises(LoaderError, match="malformed XML"):
        load_medquad(write(tmp_path, ""), "mq/empty")


def test_registered_for_xml(tmp_path):
    assert ".xml" in LOADERS
    [doc] = load_file(write(tmp_path, DOC), "mq/0000042")
    assert doc.title == "Gout"
