"""Runtime system information: resource types, the health of the AWS services, executor sync."""
