"""cdk-nag's AwsSolutions pack finds nothing that is not acknowledged with a reason
(aiplane_infra/nag.py)."""

from __future__ import annotations

from aws_cdk.assertions import Annotations, Match

from aiplane_infra import nag


def test_aws_solutions_pack_reports_nothing_unacknowledged(environment_stacks, environment_templates):
    _, stacks = environment_stacks  # environment_templates has synthesized them with the pack applied
    findings = []
    for name, stack in stacks.items():
        annotations = Annotations.from_stack(stack)
        for message in (
            *annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*")),
            *annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-.*")),
        ):
            findings.append(f"{name} {message.id}: {str(message.entry.data)[:160]}")
    assert findings == []


def test_every_acknowledgement_has_a_reason():
    for rules in (nag.EVERY_STACK, nag.API_STACKS, nag.DATA_STACK, nag.ASYNC_STACK, nag.MONITORING_STACK):
        for rule, reason in rules.items():
            assert rule.startswith("AwsSolutions-") and len(reason) > 40, rule
