"""Brains: what decides the next step. Offline, the playbook (``playbook.py``)."""
