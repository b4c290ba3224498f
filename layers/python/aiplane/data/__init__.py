"""Data access: the only code that talks to AWS (boto3 and PynamoDB)."""
