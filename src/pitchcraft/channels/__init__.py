"""Where the copy will be published: preset channels with their length limits, and the
user's own."""
