"""The harness's pytest plugin is registered by its `pytest11` entry point; nothing else belongs here."""
