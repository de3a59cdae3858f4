"""Example scenario files shipped with v2g-cosim (TOML data, read with tomllib)."""
