"""Running the install: who administers it, the model it uses, the accounts."""
