"""`virtnet host`: the walkthrough's host set-up as checks with fixes, and an idempotent prepare."""
