"""Agents: middleware for ``create_agent`` and a decision model for ``ModelRouterMiddleware``.

Both need the ``agents`` extra (``pip install "langchain-avengers[agents]"``); import them from
:mod:`langchain_avengers.middleware` and :mod:`langchain_avengers.decisions`.
"""
