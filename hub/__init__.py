"""Switchboard, the service: a least-privilege connector hub for AI agents."""
