"""The gpufarm GPU fleet: catalog, contracts and provisioning, preferences, load balancing."""
