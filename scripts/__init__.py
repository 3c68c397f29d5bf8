"""The project's scripts; only scripts.bench is a Python package of modules (run them with
`python -m scripts.bench.<name>` from the checkout)."""
