"""PII redaction: nothing redacted leaves the process (checked at the stub server), quotes come back restored."""

from __future__ import annotations

import json

from schemas.scheme import MarkScheme
from service.llm.openai_compat import OpenAICompatibleLLM
from service.pipeline import mark_essay
from service.redact import redact
from service.settings import Settings
from service.testing import OpenAIStub, fake_marker_responder

PERSONAL = ["Aisha Khan", "aisha.khan@example.org", "+44 7700 900123", "4821", "Mr Patel"]
ESSAY = (
    "My name is Aisha Khan. Candidate number: 4821. Contact aisha.khan@example.org or +44 7700 900123.\n\n"
    "Stalin became General Secretary in 1922 and used patronage to appoint loyal officials. Mr Patel said "
    "this was the key to his rise. He allied with Zinoviev and Kamenev against Trotsky, then turned on them "
    "with Bukharin, and by 1929 he had defeated the Right, which shows how well he used the party machine."
)


def test_redaction_replaces_and_restores() -> None:
    red = redact(ESSAY, terms=("Mr Patel",))
    for value in PERSONAL:
        assert value not in red.text
    assert "Stalin" in red.text and "1922" in red.text and "1929" in red.text
    assert "[NAME_1]" in red.text and "[EMAIL_1]" in red.text and "[PHONE_1]" in red.text
    assert "[CANDIDATE_1]" in red.text and "[TERM_1]" in red.text
    assert red.restore(red.text) == ESSAY


def test_no_redacted_value_reaches_the_endpoint(stalin: MarkScheme) -> None:
    import asyncio

    settings = Settings(backend="openai", llm_base_url="http://127.0.0.1:9/v1", redact=True, evidence_mode="sentences")
    with OpenAIStub(responder=fake_marker_responder()) as stub:
        llm = OpenAICompatibleLLM(
            model="m",
            base_url=stub.base_url,
            api_key=None,
            structured_output="json_schema",
            timeout_s=5,
            transport_retries=0,
        )
        result = asyncio.run(mark_essay(ESSAY, stalin, llm=llm, settings=settings, redact_terms=("Mr Patel",)))
    wire = json.dumps(stub.requests)
    for value in PERSONAL:
        assert value not in wire, f"{value!r} left the process"
    quotes = [ev for ao in result.ao_marks for ev in ao.evidence]
    assert quotes and all(ESSAY[ev.start : ev.end] == ev.quote for ev in quotes)
    assert any("Aisha Khan" in ev.quote for ev in quotes), "quotes are shown with the real values restored"
