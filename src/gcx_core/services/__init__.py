"""Services: load, decide (the pure workflow), persist in one transaction, then fire hooks."""
