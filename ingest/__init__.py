"""Newsdesk ingest: sources → articles → chunks → store."""
