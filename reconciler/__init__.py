"""netreconcile: declarative, Docker-style container networking for Linux.

Read (observe), decide (plan), act (apply): see README.md for the layering.
"""

__version__ = "0.1.0"
