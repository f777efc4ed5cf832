"""The call flows: a module per operation of the seed documents, their questions, the main menu."""
