"""Tests of patch_policy_conditions: run with the moto venv's python,
`python -m unittest discover -s internal/peers/motopatch` (go test
./internal/peers runs them)."""

import json
import unittest

import patch_policy_conditions as patch

patch.apply()

from moto.iam.access_control import IAMPolicy, IAMPolicyStatement, PermissionResult  # noqa: E402

BUCKET = "arn:aws:s3:::medportal-dev-eu-documents"
TLS_ONLY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [BUCKET, BUCKET + "/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ],
}


def judge(policy, secure=None, action="s3:PutObject", resource=BUCKET + "/doc.pdf"):
    p = IAMPolicy(json.dumps(policy))
    if secure is None:
        return p.is_action_permitted(action, resource)
    with patch.request_context({"aws:SecureTransport": secure}):
        return p.is_action_permitted(action, resource)


def statement(effect, condition, action="s3:*"):
    return {"Version": "2012-10-17", "Statement": [{"Effect": effect, "Principal": "*", "Action": action, "Resource": BUCKET + "/*", "Condition": condition}]}


class TLSOnlyBucketPolicy(unittest.TestCase):
    def test_plain_http_is_refused(self):
        self.assertEqual(judge(TLS_ONLY, secure="false"), PermissionResult.DENIED)

    def test_https_is_not_refused(self):
        self.assertEqual(judge(TLS_ONLY, secure="true"), PermissionResult.NEUTRAL)

    def test_boolean_written_as_json_boolean(self):
        policy = json.loads(json.dumps(TLS_ONLY))
        policy["Statement"][0]["Condition"] = {"Bool": {"aws:SecureTransport": False}}
        self.assertEqual(judge(policy, secure="false"), PermissionResult.DENIED)
        self.assertEqual(judge(policy, secure="true"), PermissionResult.NEUTRAL)

    def test_other_buckets_are_not_concerned(self):
        self.assertEqual(judge(TLS_ONLY, secure="false", resource="arn:aws:s3:::other/doc.pdf"), PermissionResult.NEUTRAL)

    def test_upstream_still_needs_this_patch(self):
        # If this fails, moto judges the policy right by itself: drop the patch.
        st = IAMPolicyStatement(TLS_ONLY["Statement"][0])
        self.assertEqual(patch.UPSTREAM["is_action_permitted"](st, "s3:PutObject", BUCKET + "/doc.pdf"), PermissionResult.DENIED)


class ConditionOperators(unittest.TestCase):
    def test_unmatched_condition_leaves_an_allow_out(self):
        policy = statement("Allow", {"StringEquals": {"aws:SourceArn": "arn:aws:cloudtrail:eu-central-1:1:trail/x"}})
        self.assertEqual(judge(policy, secure="true", action="s3:GetObject"), PermissionResult.NEUTRAL)

    def test_absent_key_does_not_match(self):
        policy = statement("Deny", {"StringEquals": {"s3:x-amz-acl": "public-read"}})
        self.assertEqual(judge(policy, secure="true", action="s3:GetObject"), PermissionResult.NEUTRAL)

    def test_absent_key_matches_negated_operators(self):
        for op in ("StringNotEquals", "StringNotLike", "ArnNotEquals", "ArnNotLike"):
            with self.subTest(op=op):
                policy = statement("Deny", {op: {"aws:SourceArn": "arn:aws:cloudtrail:*"}})
                self.assertEqual(judge(policy, secure="true", action="s3:GetObject"), PermissionResult.DENIED)

    def test_if_exists_and_null(self):
        self.assertEqual(judge(statement("Deny", {"StringEqualsIfExists": {"aws:SourceVpc": "vpc-1"}}), secure="true"), PermissionResult.DENIED)
        self.assertEqual(judge(statement("Deny", {"Null": {"aws:SourceVpc": "true"}}), secure="true"), PermissionResult.DENIED)
        self.assertEqual(judge(statement("Deny", {"Null": {"aws:SecureTransport": "true"}}), secure="true"), PermissionResult.NEUTRAL)

    def test_every_operator_and_key_must_match(self):
        both = {"Bool": {"aws:SecureTransport": "false"}, "StringEquals": {"aws:SourceVpc": "vpc-1"}}
        self.assertEqual(judge(statement("Deny", both), secure="false"), PermissionResult.NEUTRAL)
        one_of = {"StringLike": {"aws:SecureTransport": ["no", "f*"]}}
        self.assertEqual(judge(statement("Deny", one_of), secure="false"), PermissionResult.DENIED)

    def test_key_names_are_not_case_sensitive(self):
        policy = statement("Deny", {"Bool": {"AWS:securetransport": "false"}})
        self.assertEqual(judge(policy, secure="false"), PermissionResult.DENIED)

    def test_trust_policy_external_id(self):
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole",
                                                          "Condition": {"StringEquals": {"sts:ExternalId": "portal"}}}]}
        p = IAMPolicy(json.dumps(trust))
        role = "arn:aws:iam::123456789012:role/PortalDeployer"
        who = "arn:aws:iam::123456789012:user/ci"
        self.assertEqual(p.is_action_permitted("sts:AssumeRole", role, who, {"sts:ExternalId": "portal"}), PermissionResult.PERMITTED)
        self.assertNotEqual(p.is_action_permitted("sts:AssumeRole", role, who, {"sts:ExternalId": "other"}), PermissionResult.PERMITTED)
        self.assertNotEqual(p.is_action_permitted("sts:AssumeRole", role, who, {}), PermissionResult.PERMITTED)


class RequestScheme(unittest.TestCase):
    def test_scheme_sets_secure_transport(self):
        seen = []

        def app(self, environ, start_response):
            seen.append(patch.current_context().get("aws:securetransport"))
            return [b""]

        call = patch.record_scheme(app)
        call(None, {"wsgi.url_scheme": "https"}, None)
        call(None, {"wsgi.url_scheme": "http"}, None)
        self.assertEqual(seen, ["true", "false"])
        self.assertEqual(patch.current_context(), {})


if __name__ == "__main__":
    unittest.main()
