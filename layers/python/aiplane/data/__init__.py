"""Data access: the only code that talks to AWS (boto3 and PynamoDB)."""

from aiplane.data import aws  # noqa: F401  (before any model connects: PynamoDB shares its session and client)
