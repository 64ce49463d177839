"""Tests of patch_ec2_prefix_list_rule_description (go test ./internal/peers
runs them with the moto venv's python)."""

import unittest

import boto3
from moto import mock_aws

import patch_ec2_prefix_list_rule_description as patch


def group_with_rules(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    pls = {p["PrefixListName"]: p["PrefixListId"] for p in ec2.describe_managed_prefix_lists()["PrefixLists"]}
    sg = ec2.create_security_group(GroupName="alb", Description="d", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
        "PrefixListIds": [{"PrefixListId": pls["com.amazonaws.global.cloudfront.origin-facing"], "Description": "HTTPS from CloudFront"}],
    }])
    ec2.authorize_security_group_egress(GroupId=sg, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
        "PrefixListIds": [{"PrefixListId": pls["com.amazonaws.eu-central-1.s3"]}],
    }])
    return sg


class PrefixListRuleDescription(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        patch.apply()

    def test_description_reads_back(self):
        with mock_aws():
            ec2 = boto3.client("ec2", region_name="eu-central-1")
            sg = group_with_rules(ec2)
            got = ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"][0]
            self.assertEqual(got["IpPermissions"][0]["PrefixListIds"][0].get("Description"), "HTTPS from CloudFront")
            egress = [p for p in got["IpPermissionsEgress"] if p.get("PrefixListIds")]
            self.assertNotIn("Description", egress[0]["PrefixListIds"][0])

    def test_upstream_still_needs_this_patch(self):
        # If this fails, moto keeps the description by itself: drop the patch.
        from moto.ec2.models import security_groups

        init, flat = security_groups.SecurityGroupRule.__init__, security_groups.SecurityGroup._flattened_rules
        security_groups.SecurityGroupRule.__init__ = patch.UPSTREAM["rule_init"]
        security_groups.SecurityGroup._flattened_rules = patch.UPSTREAM["flattened_rules"]
        try:
            with mock_aws():
                ec2 = boto3.client("ec2", region_name="eu-central-1")
                sg = group_with_rules(ec2)
                got = ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"][0]
                self.assertNotIn("Description", got["IpPermissions"][0]["PrefixListIds"][0])
        finally:
            security_groups.SecurityGroupRule.__init__, security_groups.SecurityGroup._flattened_rules = init, flat


if __name__ == "__main__":
    unittest.main()
