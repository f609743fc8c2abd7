"""A finished refine job as a file to hand on: Markdown, or Word with tracked changes."""
