"""The floor every package stands on: database, errors, validation, shared protocol rules,
system values, schema migrations and the persistence guard."""
