"""Contracts shared by the functions, the CDK app, the local stack and the tests.

One source for resource names and settings (`resources`, `environments`) and for the
route table every family serves (`routes`).
"""
