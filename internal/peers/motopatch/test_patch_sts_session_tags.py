"""Tests of patch_sts_session_tags: run with the moto venv's python,
`python -m unittest discover -s internal/peers/motopatch` (go test
./internal/peers runs them)."""

import json
import os
import unittest

import patch_sts_session_tags as patch

patch.apply()

os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")

import boto3  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from moto import mock_aws  # noqa: E402

ACCOUNT = "123456789012"
TAGS = [{"Key": "portal:jurisdiction", "Value": "eu"}, {"Key": "portal:stack", "Value": "dev-eu"}]


def trust(*actions):
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": list(actions)}]})


class SessionTags(unittest.TestCase):
    def setUp(self):
        self.mock = mock_aws()
        self.mock.start()
        self.iam = boto3.client("iam", region_name="us-east-1")
        self.sts = boto3.client("sts", region_name="us-east-1")

    def tearDown(self):
        self.mock.stop()

    def role(self, name, *actions):
        return self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust(*actions))["Role"]["Arn"]

    def assume(self, arn, **kw):
        return self.sts.assume_role(RoleArn=arn, RoleSessionName="portal", **kw)

    def test_trust_policy_without_tag_session_refuses_tags(self):
        arn = self.role("NoTags", "sts:AssumeRole")
        with self.assertRaises(ClientError) as e:
            self.assume(arn, Tags=TAGS, TransitiveTagKeys=["portal:jurisdiction"])
        self.assertEqual(e.exception.response["Error"]["Code"], "AccessDenied")
        self.assertIn("sts:TagSession", e.exception.response["Error"]["Message"])
        # Without tags the same role is assumed as before.
        self.assume(arn)

    def test_trust_policy_allowing_tag_session_keeps_the_tags(self):
        arn = self.role("WithTags", "sts:AssumeRole", "sts:TagSession")
        out = self.assume(arn, Tags=TAGS, TransitiveTagKeys=["portal:jurisdiction", "portal:stack"])
        from moto.sts.models import sts_backends

        session = [r for r in sts_backends[ACCOUNT]["aws"].assumed_roles if r.access_key_id == out["Credentials"]["AccessKeyId"]][0]
        self.assertEqual(session.session_tags, {"portal:jurisdiction": "eu", "portal:stack": "dev-eu"})
        self.assertEqual(session.transitive_tag_keys, ["portal:jurisdiction", "portal:stack"])

    def test_wildcards_allow_tag_session(self):
        for name, action in [("StsStar", "sts:*"), ("Star", "*"), ("Upper", "STS:TagSession")]:
            self.assume(self.role(name, action), Tags=TAGS)

    def test_a_role_moto_does_not_know_is_left_alone(self):
        self.assume(f"arn:aws:iam::{ACCOUNT}:role/NotCreated", Tags=TAGS)

    def test_limits(self):
        arn = self.role("Limits", "sts:AssumeRole", "sts:TagSession")
        for tags in ([{"Key": f"k{i}", "Value": "v"} for i in range(51)],
                     [{"Key": "x" * 129, "Value": "v"}],
                     [{"Key": "bad*key", "Value": "v"}],
                     [{"Key": "k", "Value": "v" * 257}]):
            with self.assertRaises(ClientError) as e:
                self.assume(arn, Tags=tags)
            self.assertEqual(e.exception.response["Error"]["Code"], "ValidationError")


if __name__ == "__main__":
    unittest.main()
