"""Fast, in-process tests; one package per platform package."""
