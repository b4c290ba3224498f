"""How Lambdas reach GPU agents: the fleet VPC.

GPU instances launch into its private subnets (egress through NAT: the API over HTTPS, images,
packages) with the `agents` security group, which admits one thing: the agent port from the
`agent callers` group. The functions that call agents (`resources.AGENT_CALLER_FUNCTIONS`: the
gpufarm proxy and predict) run in the same subnets with that group; no other function, and
nothing from the internet, can open a connection to an agent. mlworker work needs no inbound
path at all: agents pull it (lease) and answer through the API. The provisioner reads the subnets
and the agents group from SSM (`agent_network_parameter`).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from aiplane_shared import resources
from aiplane_shared.environments import Environment
from aiplane_shared.resources import physical_name

AGENT_PORT = 8787  # aiplane.gpufarm.user_data.agent_environment's default


class FleetNetwork(Construct):
    def __init__(self, scope: Construct, construct_id: str, environment: Environment) -> None:
        super().__init__(scope, construct_id)
        prefix = environment.resource_prefix
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            vpc_name=physical_name(prefix, "gpu-fleet"),
            max_azs=3,
            nat_gateways=1,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="agents", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=20),
            ],
        )
        self.vpc.add_flow_log("FlowLog")
        self.callers = ec2.SecurityGroup(
            self,
            "AgentCallers",
            vpc=self.vpc,
            allow_all_outbound=True,
            security_group_name=physical_name(prefix, "gpu-agent-callers"),
            description="functions that call GPU agents (proxy, predict)",
        )
        self.agents = ec2.SecurityGroup(
            self,
            "Agents",
            vpc=self.vpc,
            allow_all_outbound=True,
            security_group_name=physical_name(prefix, "gpu-agents"),
            description="GPU agents: the agent port from the agent callers only",
        )
        self.agents.add_ingress_rule(self.callers, ec2.Port.tcp(AGENT_PORT), "agent port, from the agent callers")
        self.subnets = self.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        ssm.StringParameter(
            self,
            "AgentNetwork",
            parameter_name=resources.agent_network_parameter(prefix),
            description="where the provisioner launches GPU instances",
            string_value=cdk.Stack.of(self).to_json_string(
                {
                    "security_group": self.agents.security_group_id,
                    "subnets": [
                        {"zone": subnet.availability_zone, "subnet": subnet.subnet_id}
                        for subnet in self.subnets.subnets
                    ],
                }
            ),
        )

    def function_vpc(self) -> dict:
        """The keyword arguments that put an agent-calling function in the fleet VPC."""
        return {
            "vpc": self.vpc,
            "vpc_subnets": ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            "security_groups": [self.callers],
        }
