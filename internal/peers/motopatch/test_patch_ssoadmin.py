"""Tests of patch_ssoadmin: run with the moto venv's python,
`python -m unittest discover -s internal/peers/motopatch` (go test
./internal/peers runs them)."""

import os
import unittest

import patch_ssoadmin as patch

patch.apply()

os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")

import boto3  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from moto import mock_aws  # noqa: E402


class PermissionSetTags(unittest.TestCase):
    def setUp(self):
        self.mock = mock_aws()
        self.mock.start()
        self.sso = boto3.client("sso-admin", region_name="us-east-1")
        self.instance = self.sso.list_instances()["Instances"][0]["InstanceArn"]
        self.ps = self.sso.create_permission_set(
            Name="ops-readonly-dev", InstanceArn=self.instance, SessionDuration="PT1H",
            Tags=[{"Key": "portal:stack", "Value": "staff-roles-dev"}],
        )["PermissionSet"]["PermissionSetArn"]

    def tearDown(self):
        self.mock.stop()

    def tags(self):
        out = self.sso.list_tags_for_resource(InstanceArn=self.instance, ResourceArn=self.ps)["Tags"]
        return {t["Key"]: t["Value"] for t in out}

    def test_tags_given_at_creation_are_listed(self):
        self.assertEqual(self.tags(), {"portal:stack": "staff-roles-dev"})

    def test_tag_and_untag(self):
        self.sso.tag_resource(InstanceArn=self.instance, ResourceArn=self.ps, Tags=[{"Key": "portal:resource", "Value": "ops_readonly"}])
        self.assertEqual(self.tags(), {"portal:stack": "staff-roles-dev", "portal:resource": "ops_readonly"})
        self.sso.untag_resource(InstanceArn=self.instance, ResourceArn=self.ps, TagKeys=["portal:stack"])
        self.assertEqual(self.tags(), {"portal:resource": "ops_readonly"})

    def test_unknown_permission_set_is_not_found(self):
        with self.assertRaises(ClientError) as e:
            self.sso.list_tags_for_resource(InstanceArn=self.instance, ResourceArn=self.instance + "/ps-0000000000000000")
        self.assertEqual(e.exception.response["Error"]["Code"], "ResourceNotFoundException")

    def test_second_permission_set_of_a_name_conflicts(self):
        with self.assertRaises(ClientError) as e:
            self.sso.create_permission_set(Name="ops-readonly-dev", InstanceArn=self.instance)
        self.assertEqual(e.exception.response["Error"]["Code"], "ConflictException")
        self.sso.create_permission_set(Name="ops-readonly-test", InstanceArn=self.instance)


if __name__ == "__main__":
    unittest.main()
