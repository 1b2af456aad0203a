"""mirage-broken: a plugin that fails to load (test data)."""
