"""Contract tests: our API against the Aeon contract, written from the contract alone."""
