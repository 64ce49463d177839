"""Tests of patch_autoscaling_policies_follow_group (go test ./internal/peers
runs them with the moto venv's python)."""

import unittest

import boto3
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.autoscaling import models

import patch_autoscaling_policies_follow_group as patch

REGION = "eu-central-1"


def group(name):
    ec2 = boto3.client("ec2", region_name=REGION)
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    asg = boto3.client("autoscaling", region_name=REGION)
    asg.create_launch_configuration(LaunchConfigurationName=name + "-lc", ImageId="ami-12c6146b", InstanceType="t3.micro")
    asg.create_auto_scaling_group(AutoScalingGroupName=name, LaunchConfigurationName=name + "-lc", MinSize=0, MaxSize=1,
                                  DesiredCapacity=0, VPCZoneIdentifier=subnet)


def put_policy(group_name, name):
    boto3.client("autoscaling", region_name=REGION).put_scaling_policy(
        AutoScalingGroupName=group_name, PolicyName=name, PolicyType="TargetTrackingScaling",
        TargetTrackingConfiguration={"PredefinedMetricSpecification": {"PredefinedMetricType": "ASGAverageCPUUtilization"}, "TargetValue": 60.0},
    )


def policies(name):
    return boto3.client("autoscaling", region_name=REGION).describe_policies(PolicyNames=[name])["ScalingPolicies"]


class PoliciesFollowTheirGroup(unittest.TestCase):
    def setUp(self):
        self.mock = mock_aws()
        self.mock.start()
        patch.apply()

    def tearDown(self):
        self.mock.stop()

    def test_a_policy_of_a_missing_group_is_refused(self):
        with self.assertRaises(ClientError) as caught:
            put_policy("nobody", "cpu")
        self.assertEqual(caught.exception.response["Error"]["Code"], "ValidationError")
        self.assertIn("AutoScalingGroup name not found", caught.exception.response["Error"]["Message"])
        self.assertEqual(policies("cpu"), [])

    def test_deleting_a_group_deletes_its_policies_only(self):
        group("app")
        group("other")
        put_policy("app", "app-cpu")
        put_policy("other", "other-cpu")
        boto3.client("autoscaling", region_name=REGION).delete_auto_scaling_group(AutoScalingGroupName="app", ForceDelete=True)
        self.assertEqual(policies("app-cpu"), [])
        self.assertEqual(len(policies("other-cpu")), 1)
        # A group made again under the same name starts with no policy.
        group("app")
        self.assertEqual(policies("app-cpu"), [])

    def test_upstream_still_needs_this_patch(self):
        # If this fails, moto keeps policies with their group by itself:
        # drop the patch.
        backend = models.AutoScalingBackend
        current = backend.put_scaling_policy, backend.delete_auto_scaling_group
        backend.put_scaling_policy = patch.UPSTREAM["put_scaling_policy"]
        backend.delete_auto_scaling_group = patch.UPSTREAM["delete_auto_scaling_group"]
        try:
            put_policy("ghost", "ghost-cpu")
            self.assertEqual(len(policies("ghost-cpu")), 1)
        finally:
            backend.put_scaling_policy, backend.delete_auto_scaling_group = current


if __name__ == "__main__":
    unittest.main()
