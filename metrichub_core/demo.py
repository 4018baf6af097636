"""The built-in ``demo`` source: a deterministic, realistic team history."""
