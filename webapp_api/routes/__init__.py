"""HTTP routes, one module per area. Routes parse input, call a service, render output."""
