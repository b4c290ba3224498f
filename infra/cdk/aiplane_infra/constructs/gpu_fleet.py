"""The GPU fleet's EC2 side: the launch template GPU instances start from, their role and
instance profile, and what the functions that provision them may do in EC2."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aiplane_agent import artifact
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from aiplane_infra.constructs.access import Capability
from aiplane_shared import resources
from aiplane_shared.environments import Environment
from aiplane_shared.resources import physical_name

# The AWS Deep Learning Base AMI (NVIDIA driver, CUDA, Docker), resolved at deploy time.
GPU_IMAGE_PARAMETER = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"
ROOT_VOLUME_GB = 200
AGENT_ARTIFACT_PATH = Path(__file__).resolve().parents[4] / "build" / "gpu-agent" / "aiplane-agent.zip"


class GpuFleet(Construct):
    def __init__(self, scope: Construct, construct_id: str, environment: Environment) -> None:
        super().__init__(scope, construct_id)
        prefix = environment.resource_prefix
        definition = resources.GPU_LAUNCH_TEMPLATE
        name = physical_name(prefix, definition.name)
        partition = cdk.Aws.PARTITION
        self.instance_role = iam.Role(
            self,
            "InstanceRole",
            role_name=name,
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            # No managed policies: AmazonSSMManagedInstanceCore would let any instance read every
            # contract's agent credential (ssm:GetParameter on *).
            description="GPU instances running the aiplane GPU agent",
        )
        # The agent artifact, built from this repo at synth time and uploaded as an asset; the
        # provisioner reads its URI from SSM and user data installs it (aiplane.gpufarm.user_data).
        self.agent_artifact = s3_assets.Asset(self, "AgentArtifact", path=str(artifact.build(AGENT_ARTIFACT_PATH)))
        ssm.StringParameter(
            self,
            "AgentArtifactUri",
            parameter_name=resources.agent_artifact_parameter(prefix),
            string_value=self.agent_artifact.s3_object_url,
            description="the GPU agent artifact",
        )
        # That one object only: the agent talks to the API with its credential, not to AWS.
        self.instance_role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[
                    f"arn:{partition}:s3:::{self.agent_artifact.s3_bucket_name}/{self.agent_artifact.s3_object_key}"
                ],
            )
        )
        # Its contract's agent credential only: the provisioner tags each parameter with the ARN of
        # the one instance that may read it (aiplane.gpufarm.agent_credentials).
        self.instance_role.add_to_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameter"],
                resources=[agent_credential_parameters_arn(prefix)],
                conditions={"StringEquals": {"ssm:resourceTag/aiplane:instance-arn": "${ec2:SourceInstanceARN}"}},
            )
        )
        self.instance_profile = iam.CfnInstanceProfile(
            self, "InstanceProfile", instance_profile_name=name, roles=[self.instance_role.role_name]
        )
        self.launch_template = ec2.CfnLaunchTemplate(
            self,
            "LaunchTemplate",
            launch_template_name=name,
            launch_template_data=ec2.CfnLaunchTemplate.LaunchTemplateDataProperty(
                image_id=f"resolve:ssm:{GPU_IMAGE_PARAMETER}",
                instance_type=definition.default_instance_type,
                iam_instance_profile=ec2.CfnLaunchTemplate.IamInstanceProfileProperty(
                    arn=self.instance_profile.attr_arn
                ),
                # Hop limit 1: the agent on the host reaches the instance metadata, a task's container
                # (one hop further) does not, so it never gets the role that reads the contract's credential.
                metadata_options=ec2.CfnLaunchTemplate.MetadataOptionsProperty(
                    http_tokens="required", http_put_response_hop_limit=1
                ),
                block_device_mappings=[
                    ec2.CfnLaunchTemplate.BlockDeviceMappingProperty(
                        device_name="/dev/sda1",
                        ebs=ec2.CfnLaunchTemplate.EbsProperty(
                            volume_size=ROOT_VOLUME_GB, volume_type="gp3", encrypted=True, delete_on_termination=True
                        ),
                    )
                ],
                instance_initiated_shutdown_behavior="terminate",
            ),
        )


def agent_credential_parameters_arn(prefix: str) -> str:
    # A parameter's ARN is "parameter" followed by its name, which starts with "/".
    return (
        f"arn:{cdk.Aws.PARTITION}:ssm:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:parameter"
        f"{resources.agent_credential_parameter(prefix)}*"
    )


def gpu_fleet_statements(environment: Environment, capability: Capability) -> list[iam.PolicyStatement]:
    """EC2 for the catalog (read anything), the provisioner (launch from our launch template only)
    and DELETE (terminate only instances of this environment)."""
    prefix = environment.resource_prefix
    region, account, partition = cdk.Aws.REGION, cdk.Aws.ACCOUNT_ID, cdk.Aws.PARTITION
    name = physical_name(prefix, resources.GPU_LAUNCH_TEMPLATE.name)
    if capability is Capability.EC2_READ:
        return [
            iam.PolicyStatement(
                actions=[
                    "ec2:DescribeInstanceTypes",
                    "ec2:DescribeInstanceTypeOfferings",
                    "ec2:DescribeSpotPriceHistory",
                    "ec2:DescribeInstances",
                    "ec2:DescribeInstanceAttribute",
                    "ec2:DescribeAvailabilityZones",
                    "ec2:DescribeLaunchTemplates",
                    "ec2:DescribeLaunchTemplateVersions",
                ],
                resources=["*"],  # EC2 Describe actions have no resource-level permissions
            )
        ]
    if capability is Capability.EC2_TERMINATE:
        return [
            iam.PolicyStatement(
                actions=["ec2:TerminateInstances"],
                resources=[f"arn:{partition}:ec2:{region}:{account}:instance/*"],
                conditions={"StringEquals": {"aws:ResourceTag/aiplane:environment": environment.name}},
            )
        ]
    if capability is Capability.AGENT_CREDENTIALS:
        # Published at launch, tagged with the one instance that may read it, deleted when the contract ends.
        return [
            iam.PolicyStatement(
                actions=["ssm:PutParameter", "ssm:AddTagsToResource", "ssm:DeleteParameter"],
                resources=[agent_credential_parameters_arn(prefix)],
            )
        ]
    assert capability is Capability.EC2_LAUNCH, capability
    return [
        iam.PolicyStatement(
            actions=["ec2:RunInstances"],  # launching needs the template plus every resource it creates or uses
            resources=[f"arn:{partition}:ec2:{region}:{account}:launch-template/*"],
        ),
        iam.PolicyStatement(
            actions=["ec2:RunInstances"],
            resources=[
                f"arn:{partition}:ec2:{region}:{account}:{kind}/*"
                for kind in (
                    "instance",
                    "volume",
                    "network-interface",
                    "subnet",
                    "security-group",
                    "spot-instances-request",
                )
            ]
            + [f"arn:{partition}:ec2:{region}::image/*"],
        ),
        iam.PolicyStatement(
            actions=["ec2:CreateTags"],
            resources=[
                f"arn:{partition}:ec2:{region}:{account}:{kind}/*"
                for kind in ("instance", "volume", "spot-instances-request")
            ],
            conditions={"StringEquals": {"ec2:CreateAction": "RunInstances"}},
        ),
        # The launch template's image is `resolve:ssm:`: EC2 resolves it with the caller's rights.
        iam.PolicyStatement(
            actions=["ssm:GetParameters", "ssm:GetParameter"],
            resources=[f"arn:{partition}:ssm:{region}::parameter{GPU_IMAGE_PARAMETER}"],
        ),
        iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[f"arn:{partition}:iam::{account}:role/{name}"],
            conditions={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        ),
        # The first Spot request creates AWSServiceRoleForEC2Spot when it is missing (README: prerequisites).
        iam.PolicyStatement(
            actions=["iam:CreateServiceLinkedRole"],
            resources=[
                f"arn:{partition}:iam::{account}:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot"
            ],
            conditions={"StringEquals": {"iam:AWSServiceName": "spot.amazonaws.com"}},
        ),
    ]
