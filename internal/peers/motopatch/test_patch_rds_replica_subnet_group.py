"""Tests of patch_rds_replica_subnet_group (go test ./internal/peers runs
them with the moto venv's python)."""

import unittest

import boto3
from botocore.exceptions import ClientError
from moto import mock_aws

import patch_rds_replica_subnet_group as patch


def network(region, cidr, name):
    ec2 = boto3.client("ec2", region_name=region)
    vpc = ec2.create_vpc(CidrBlock=cidr + ".0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"{cidr}.{i}.0/24", AvailabilityZone=region + zone)["Subnet"]["SubnetId"]
        for i, zone in enumerate("ab")
    ]
    boto3.client("rds", region_name=region).create_db_subnet_group(
        DBSubnetGroupName=name, DBSubnetGroupDescription=name, SubnetIds=subnets
    )
    return vpc


def source():
    home = boto3.client("rds", region_name="us-east-1")
    return home.create_db_instance(
        DBInstanceIdentifier="db", Engine="postgres", DBInstanceClass="db.t4g.micro", AllocatedStorage=20,
        MasterUsername="portal", MasterUserPassword="not-a-real-password", DBSubnetGroupName="home-db",
    )["DBInstance"]


class CrossRegionReplica(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = mock_aws()
        cls.mock.start()
        patch.apply()
        cls.home_vpc = network("us-east-1", "10.1", "home-db")
        cls.standby_vpc = network("us-east-2", "10.2", "standby-db")
        cls.source = source()

    @classmethod
    def tearDownClass(cls):
        cls.mock.stop()

    def test_replica_uses_its_own_regions_subnet_group(self):
        standby = boto3.client("rds", region_name="us-east-2")
        db = standby.create_db_instance_read_replica(
            DBInstanceIdentifier="db-standby-1", SourceDBInstanceIdentifier=self.source["DBInstanceArn"], DBSubnetGroupName="standby-db"
        )["DBInstance"]
        self.assertEqual(db["DBSubnetGroup"]["DBSubnetGroupName"], "standby-db")
        self.assertEqual(db["DBSubnetGroup"]["VpcId"], self.standby_vpc)

    def test_source_regions_group_is_not_found(self):
        standby = boto3.client("rds", region_name="us-east-2")
        with self.assertRaises(ClientError) as e:
            standby.create_db_instance_read_replica(
                DBInstanceIdentifier="db-standby-3", SourceDBInstanceIdentifier=self.source["DBInstanceArn"], DBSubnetGroupName="home-db"
            )
        self.assertEqual(e.exception.response["Error"]["Code"], "DBSubnetGroupNotFoundFault")

    def test_same_region_replica_refuses_a_group(self):
        home = boto3.client("rds", region_name="us-east-1")
        with self.assertRaises(ClientError) as e:
            home.create_db_instance_read_replica(DBInstanceIdentifier="db-replica-2", SourceDBInstanceIdentifier="db", DBSubnetGroupName="home-db")
        self.assertEqual(e.exception.response["Error"]["Code"], "DBSubnetGroupNotAllowedFault")

    def test_same_region_replica_inherits_the_group(self):
        home = boto3.client("rds", region_name="us-east-1")
        db = home.create_db_instance_read_replica(DBInstanceIdentifier="db-replica-1", SourceDBInstanceIdentifier="db")["DBInstance"]
        self.assertEqual(db["DBSubnetGroup"]["DBSubnetGroupName"], "home-db")

    def test_upstream_still_needs_this_patch(self):
        # If this fails, moto places cross-region replicas right by itself:
        # drop the patch.
        from moto.rds import models

        current = models.RDSBackend.create_db_instance_read_replica
        models.RDSBackend.create_db_instance_read_replica = patch.UPSTREAM["create_db_instance_read_replica"]
        try:
            standby = boto3.client("rds", region_name="us-east-2")
            with self.assertRaises(ClientError):
                standby.create_db_instance_read_replica(
                    DBInstanceIdentifier="db-standby-2", SourceDBInstanceIdentifier=self.source["DBInstanceArn"], DBSubnetGroupName="standby-db"
                )
        finally:
            models.RDSBackend.create_db_instance_read_replica = current


if __name__ == "__main__":
    unittest.main()
