"""HTTP routes: thin functions that authenticate, parse and call the hub's services."""
