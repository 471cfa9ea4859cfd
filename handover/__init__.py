"""handover: the core library of the contract lifecycle.

Nothing in this package imports Prefect: a client can verify and open a
bundle, and a test can call any function, without a Prefect server.
"""

__version__ = "0.1.0"
