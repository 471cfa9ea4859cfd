"""Evidence of what was done: checklist items and their state machine, the store, the audit log."""
