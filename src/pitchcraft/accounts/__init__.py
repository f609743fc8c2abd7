"""A user's account as a whole: its summary, an export of everything it holds, deletion."""
