"""Newsdesk question answering: settings, the store, retrieval and answers."""
