"""Named model configs, one file per name, each stating only what differs from its family's base.

Installed as `generation.configs`; see README.md in this folder for the rules every config follows.
"""
