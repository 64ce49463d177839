"""Tests of patch_route53_healthchecks_prefix_list (go test ./internal/peers
runs them with the moto venv's python)."""

import unittest

import boto3
from moto import mock_aws

import patch_route53_healthchecks_prefix_list as patch


def names(region):
    ec2 = boto3.client("ec2", region_name=region)
    return {pl["PrefixListName"]: pl for pl in ec2.describe_managed_prefix_lists()["PrefixLists"]}


class HealthCheckersPrefixList(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        patch.apply()

    def test_every_region_serves_both_lists(self):
        with mock_aws():
            for region in ("us-east-1", "eu-central-1", "ap-southeast-1"):
                got = names(region)
                for name in (f"com.amazonaws.{region}.route53-healthchecks", f"com.amazonaws.{region}.ipv6.route53-healthchecks"):
                    self.assertIn(name, got)
                    self.assertEqual(got[name]["OwnerId"], "AWS")

    def test_a_security_group_admits_health_checkers(self):
        with mock_aws():
            ec2 = boto3.client("ec2", region_name="eu-central-1")
            pl = names("eu-central-1")["com.amazonaws.eu-central-1.route53-healthchecks"]["PrefixListId"]
            vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
            sg = ec2.create_security_group(GroupName="alb-health", Description="d", VpcId=vpc)["GroupId"]
            ec2.authorize_security_group_ingress(
                GroupId=sg, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "PrefixListIds": [{"PrefixListId": pl}]}]
            )
            got = ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"][0]["IpPermissions"]
            self.assertEqual(got[0]["PrefixListIds"][0]["PrefixListId"], pl)
            entries = ec2.get_managed_prefix_list_entries(PrefixListId=pl)["Entries"]
            self.assertIn("15.177.0.0/18", [e["Cidr"] for e in entries])

    def test_upstream_still_needs_this_patch(self):
        # If this fails, moto serves the list by itself: drop the patch.
        backend = type("B", (), {"region_name": "us-east-1", "managed_prefix_lists": {}})()

        def create(**kw):
            backend.managed_prefix_lists[len(backend.managed_prefix_lists)] = type("P", (), {"prefix_list_name": kw["prefix_list_name"]})()

        backend._create_aws_managed_prefix_list = lambda name, address_family, entries: create(prefix_list_name=name)
        backend.create_managed_prefix_list = create
        patch.UPSTREAM["create_default_pls"](backend)
        got = [p.prefix_list_name for p in backend.managed_prefix_lists.values()]
        self.assertNotIn("com.amazonaws.us-east-1.route53-healthchecks", got)


if __name__ == "__main__":
    unittest.main()
