"""Test support shipped with draftmark: an OpenAI-compatible stub server for contract tests and benchmarks."""

from service.testing.openai_stub import OpenAIStub, StubReply, fake_marker_responder

__all__ = ["OpenAIStub", "StubReply", "fake_marker_responder"]
