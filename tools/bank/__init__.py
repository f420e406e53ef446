"""The reference bank host (tools/bank/README.md): python -m tools.bank, .admin, .load."""
