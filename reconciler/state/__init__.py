"""Kernel objects as values: the desired state, IP address management, and the planner that diffs states.

Pure: no I/O, no clock. `reconciler.kernel` observes and changes the real kernel.
"""
