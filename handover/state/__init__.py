"""Where handover keeps its state and how it writes it (atomic files)."""
