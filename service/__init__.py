"""HTTP-side pieces the server wires together."""
