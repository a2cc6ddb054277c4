"""Live migration: policy, preflight, destination XML, the watched job and its report."""
