"""The spec: its dataclasses, reading YAML into them, the JSON Schema and every validation.

Pure: nothing in this package writes to the machine (reading the spec file is the one read).
"""
