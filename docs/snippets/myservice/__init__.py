"""The small service the getting-started guide and the recipes build, step by step."""
