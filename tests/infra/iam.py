"""Read a function's permissions out of a template: its own role's inline policies plus any
policy attached to that role (event sources add one)."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template


def function_resource(template: Template, physical_name: str) -> tuple[str, dict[str, Any]]:
    (found,) = template.find_resources("AWS::Lambda::Function", {"Properties": {"FunctionName": physical_name}}).items()
    return found


def role_id_of(template: Template, physical_name: str) -> str:
    return function_resource(template, physical_name)[1]["Properties"]["Role"]["Fn::GetAtt"][0]


def function_statements(template: Template, physical_name: str) -> list[dict[str, Any]]:
    role_id = role_id_of(template, physical_name)
    role = template.find_resources("AWS::IAM::Role")[role_id]
    statements = [
        statement
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def actions_of(statements: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for statement in statements:
        action = statement["Action"]
        found.update([action] if isinstance(action, str) else action)
    return found


def function_actions(template: Template, physical_name: str) -> set[str]:
    return actions_of(function_statements(template, physical_name))
