"""Front doors that are not reached by a request: background workers that open their own units
of work (the AI participant's reply runner)."""
