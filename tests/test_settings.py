from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.settings import Settings


def test_auto_backend_is_local_without_endpoint_or_key() -> None:
    assert Settings().resolved_backend == "local"


def test_openai_api_key_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    settings = Settings()
    assert settings.resolved_backend == "openai"
    assert settings.llm_api_key is not None and settings.llm_api_key.get_secret_value() == "sk-test"
    assert "sk-test" not in repr(settings)


def test_env_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRAFTMARK_LLM_BASE_URL", "http://127.0.0.1:8080/v1")
    monkeypatch.setenv("DRAFTMARK_SAMPLES", "3")
    monkeypatch.setenv("DRAFTMARK_TEMPERATURE", "0.7")
    settings = Settings()
    assert settings.resolved_backend == "openai" and settings.samples == 3 and settings.temperature == 0.7


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("DRAFTMARK_LLM_BASE_URL", "localhost:8080", "must start with http"),
        ("DRAFTMARK_SAMPLES", "0", "greater than or equal to 1"),
        ("DRAFTMARK_TEMPERATURE", "5", "less than or equal to 2"),
        ("DRAFTMARK_BACKEND", "openai", "needs DRAFTMARK_LLM_BASE_URL"),
    ],
)
def test_unsafe_values_are_refused(monkeypatch: pytest.MonkeyPatch, env: str, value: str, message: str) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ValidationError, match=message):
        Settings()
