"""Tooling over the whole platform: the `tenderwatch` command, the local supervisor, the demo and its sinks,
the contract documents. Services never import it; it imports them."""
