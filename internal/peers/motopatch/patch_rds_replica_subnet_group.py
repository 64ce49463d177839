"""Place a cross-region read replica in a DB subnet group of its own
region, as AWS does, and refuse one for a same-region replica.

Upstream behaviour mended (moto 5.2.5, moto/rds/models.py,
RDSBackend.create_db_instance_read_replica): the replica starts as a copy
of its source, and DBInstance.update sets db_subnet_group_name before it
sets the replica's backend, so the DBSubnetGroupName of a replica created
in another region is looked up among the *source* region's subnet groups:
a correct request is refused with DBSubnetGroupNotFoundFault, and one
naming a group of the source's region is accepted.

AWS's rules, from the RDS API Reference (CreateDBInstanceReadReplica,
DBSubnetGroupName): for a cross-Region replica the group must be in the
Region the replica is created in; for a replica in its source's Region the
parameter is not allowed (DBSubnetGroupNotAllowedFault) and the replica
inherits the source's subnet group.
"""

from moto.rds import models
from moto.rds.exceptions import RDSClientError

UPSTREAM = {}


class DBSubnetGroupNotAllowedFault(RDSClientError):
    def __init__(self) -> None:
        super().__init__(
            "DBSubnetGroupNotAllowedFault",
            "The DBSubnetGroup shouldn't be specified while creating read replicas that lie in the same region as the source instance.",
        )


def _create_db_instance_read_replica(self, db_kwargs):
    kwargs = dict(db_kwargs)
    subnet_group = kwargs.pop("db_subnet_group_name", None)
    cross_region = bool(self.arn_regex.match(kwargs["source_db_instance_identifier"])) and (
        kwargs["source_db_instance_identifier"].split(":")[3] != self.region_name
    )
    if subnet_group and not cross_region:
        raise DBSubnetGroupNotAllowedFault()
    replica = UPSTREAM["create_db_instance_read_replica"](self, kwargs)
    if subnet_group:
        # The replica now belongs to this region's backend: the setter looks
        # the group up here, and raises DBSubnetGroupNotFoundFault if absent.
        replica.db_subnet_group_name = subnet_group
    return replica


def apply() -> None:
    if UPSTREAM:
        return
    UPSTREAM["create_db_instance_read_replica"] = models.RDSBackend.create_db_instance_read_replica
    models.RDSBackend.create_db_instance_read_replica = _create_db_instance_read_replica
