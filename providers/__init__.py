"""Streaming chat clients for many LLM providers, on one async interface over httpx.

Plain Python: nothing here imports Django. See :mod:`providers.base` for the contract and
:mod:`providers.registry` for the names.
"""
