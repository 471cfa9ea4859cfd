"""The demo: a sandbox client estate and its keys."""
