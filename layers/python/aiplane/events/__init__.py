"""Runtime functions, event triggers, the event store, webhook mappings, and jobs with leases."""
