"""Developer and deployment scripts (importable as ``scripts.*`` from the repository root)."""
