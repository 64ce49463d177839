"""Delete a cross-region read replica as AWS does.

Upstream behaviour mended (moto 5.2.5, moto/rds/models.py,
DBInstance.add_replica and remove_replica): a source records a replica in
another region by its ARN but removes it by its identifier, so
DeleteDBInstance of a cross-region replica raises ValueError inside moto and
answers HTTP 500; the replica can never be deleted and its source keeps
listing it.

AWS's rule, from the RDS API Reference (DeleteDBInstance): a read replica,
in its source's Region or another, is deleted like any DB instance, and its
source stops listing it in ReadReplicaDBInstanceIdentifiers.
"""

from moto.rds import models

UPSTREAM = {}


def _remove_replica(self, replica):
    for name in (replica.db_instance_arn, replica.db_instance_identifier):
        if name in self.replicas:
            self.replicas.remove(name)
            return


def apply() -> None:
    if UPSTREAM:
        return
    UPSTREAM["remove_replica"] = models.DBInstance.remove_replica
    models.DBInstance.remove_replica = _remove_replica
