"""Adapters that let other teams' code use the knowledge base and the triage pipeline (LangChain today)."""
