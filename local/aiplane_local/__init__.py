"""The embedded local stack: moto as the AWS endpoint, the resources from the shared
definitions, every family on one uvicorn server, and dispatchers that do what AWS would do.

Nothing here ships to Lambda. moto's gaps are filled here, never in product code.
"""
