"""The end of a contract: erasure of the provider's copies and its signed certificate."""
