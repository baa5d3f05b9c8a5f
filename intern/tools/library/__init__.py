"""The packaged recipe library: short markdown notes on post-training, each citing its sources.

Each ``*.md`` file opens with YAML front matter (``id``, ``title``, ``summary``, ``tags``,
``citations``); :mod:`intern.tools.knowledge` loads and searches them. A package (not a
plain folder) so the notes ship with the distribution as package data.
"""
