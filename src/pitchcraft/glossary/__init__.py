"""The brand glossary: the words a user's company writes (and those it avoids or bans),
checked in copy and given to the model."""
