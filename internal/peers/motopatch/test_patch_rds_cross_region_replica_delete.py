"""Tests of patch_rds_cross_region_replica_delete (go test ./internal/peers
runs them with the moto venv's python)."""

import unittest

import boto3
from moto import mock_aws

import patch_rds_cross_region_replica_delete as patch


def source(name):
    home = boto3.client("rds", region_name="us-east-1")
    return home.create_db_instance(
        DBInstanceIdentifier=name, Engine="postgres", DBInstanceClass="db.t4g.micro", AllocatedStorage=20,
        MasterUsername="portal", MasterUserPassword="not-a-real-password",
    )["DBInstance"]


def replicas(name):
    home = boto3.client("rds", region_name="us-east-1")
    return home.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]["ReadReplicaDBInstanceIdentifiers"]


class CrossRegionReplicaDelete(unittest.TestCase):
    def setUp(self):
        self.mock = mock_aws()
        self.mock.start()
        patch.apply()

    def tearDown(self):
        self.mock.stop()

    def test_cross_region_replica_is_deleted_and_unlisted(self):
        db = source("db")
        standby = boto3.client("rds", region_name="us-east-2")
        replica = standby.create_db_instance_read_replica(
            DBInstanceIdentifier="db-standby", SourceDBInstanceIdentifier=db["DBInstanceArn"]
        )["DBInstance"]
        self.assertEqual(replicas("db"), [replica["DBInstanceArn"]])
        standby.delete_db_instance(DBInstanceIdentifier="db-standby", SkipFinalSnapshot=True)
        self.assertEqual(standby.describe_db_instances()["DBInstances"], [])
        self.assertEqual(replicas("db"), [])

    def test_same_region_replica_is_still_unlisted(self):
        source("db2")
        home = boto3.client("rds", region_name="us-east-1")
        home.create_db_instance_read_replica(DBInstanceIdentifier="db2-replica", SourceDBInstanceIdentifier="db2")
        self.assertEqual(replicas("db2"), ["db2-replica"])
        home.delete_db_instance(DBInstanceIdentifier="db2-replica", SkipFinalSnapshot=True)
        self.assertEqual(replicas("db2"), [])

    def test_upstream_still_needs_this_patch(self):
        # If this fails, moto deletes cross-region replicas by itself: drop
        # the patch.
        db = source("db3")
        standby = boto3.client("rds", region_name="us-east-2")
        standby.create_db_instance_read_replica(DBInstanceIdentifier="db3-standby", SourceDBInstanceIdentifier=db["DBInstanceArn"])
        current = models_instance().remove_replica
        models_instance().remove_replica = patch.UPSTREAM["remove_replica"]
        try:
            with self.assertRaises(Exception):
                standby.delete_db_instance(DBInstanceIdentifier="db3-standby", SkipFinalSnapshot=True)
        finally:
            models_instance().remove_replica = current


def models_instance():
    from moto.rds import models

    return models.DBInstance


if __name__ == "__main__":
    unittest.main()
