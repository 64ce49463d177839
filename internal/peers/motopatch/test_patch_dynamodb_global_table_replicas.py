"""Tests of patch_dynamodb_global_table_replicas (go test ./internal/peers
runs them with the moto venv's python)."""

import unittest

import boto3
from botocore.exceptions import ClientError
from moto import mock_aws

import patch_dynamodb_global_table_replicas as patch


def table(client, name="medicines", stream=True):
    kms = boto3.client("kms", region_name=client.meta.region_name).create_key()["KeyMetadata"]["Arn"]
    kw = {}
    if stream:
        kw["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    client.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "document_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "document_id", "KeyType": "HASH"}],
        SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": kms}, **kw,
    )
    return kms


class GlobalTableReplicas(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        patch.apply()

    def test_add_and_remove_a_replica(self):
        with mock_aws():
            home = boto3.client("dynamodb", region_name="eu-central-1")
            table(home)
            key = boto3.client("kms", region_name="eu-west-1").create_key()["KeyMetadata"]["Arn"]
            out = home.update_table(TableName="medicines", ReplicaUpdates=[{"Create": {"RegionName": "eu-west-1", "KMSMasterKeyId": key}}])
            self.assertEqual(out["TableDescription"]["Replicas"], [{"RegionName": "eu-west-1", "ReplicaStatus": "ACTIVE", "KMSMasterKeyId": key}])
            standby = boto3.client("dynamodb", region_name="eu-west-1").describe_table(TableName="medicines")["Table"]
            self.assertEqual(standby["SSEDescription"]["KMSMasterKeyArn"], key)
            self.assertEqual(standby["GlobalTableVersion"], "2019.11.21")
            self.assertEqual([r["RegionName"] for r in standby["Replicas"]], ["eu-central-1"])
            home.update_table(TableName="medicines", ReplicaUpdates=[{"Delete": {"RegionName": "eu-west-1"}}])
            self.assertNotIn("Replicas", home.describe_table(TableName="medicines")["Table"])
            with self.assertRaises(ClientError):
                boto3.client("dynamodb", region_name="eu-west-1").describe_table(TableName="medicines")

    def test_refusals(self):
        with mock_aws():
            home = boto3.client("dynamodb", region_name="us-east-1")
            table(home, "no-stream", stream=False)
            with self.assertRaises(ClientError) as e:
                home.update_table(TableName="no-stream", ReplicaUpdates=[{"Create": {"RegionName": "us-east-2"}}])
            self.assertIn("streams", str(e.exception))
            table(home, "t2")
            with self.assertRaises(ClientError):
                home.update_table(TableName="t2", ReplicaUpdates=[{"Create": {"RegionName": "us-east-1"}}])
            home.update_table(TableName="t2", ReplicaUpdates=[{"Create": {"RegionName": "us-east-2"}}])
            with self.assertRaises(ClientError):
                home.update_table(TableName="t2", ReplicaUpdates=[{"Create": {"RegionName": "us-east-2"}}])

    def test_upstream_still_needs_this_patch(self):
        # If this fails, moto serves replicas by itself: drop the patch.
        from moto.dynamodb import responses
        from moto.dynamodb.models.table import Table

        current = responses.DynamoHandler.update_table, Table.describe
        responses.DynamoHandler.update_table, Table.describe = patch.UPSTREAM["update_table"], patch.UPSTREAM["describe"]
        try:
            with mock_aws():
                home = boto3.client("dynamodb", region_name="eu-central-1")
                table(home)
                out = home.update_table(TableName="medicines", ReplicaUpdates=[{"Create": {"RegionName": "eu-west-1"}}])
                self.assertNotIn("Replicas", out["TableDescription"])
        finally:
            responses.DynamoHandler.update_table, Table.describe = current


if __name__ == "__main__":
    unittest.main()
