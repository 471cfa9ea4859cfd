"""Documents for clients and auditors: a block model rendered to Markdown and HTML."""
