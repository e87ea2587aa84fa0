"""Files mounted read-only into every sandbox: the harness, the pytest guard, configs.

Nothing here imports the rest of the project: this folder is all a sandboxed run sees
of it.
"""
