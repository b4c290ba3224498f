"""The ML worker family (contract 002): tasks, GPU scheduling, plugins, the audit chain,
experiments and Jupyter services, all stored in the mlworker table."""
