"""Running the reconciler: one converge pass (engine), the watch loop, its scheduler and triggers,
spec sources (file, git), metrics and logs.
"""
