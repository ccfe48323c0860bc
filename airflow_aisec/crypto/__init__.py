"""Keys and encryption: the local keyring (embedded default) and, later, KMS providers."""
