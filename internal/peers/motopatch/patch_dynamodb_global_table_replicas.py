"""Serve global tables version 2019.11.21: replicas added and removed with
UpdateTable ReplicaUpdates, each a table of the same name in its own
region, encrypted with the KMS key the request names for that region, and
listed under Replicas by DescribeTable in every region of the group.

Upstream behaviour mended (moto 5.2.5, moto/dynamodb/responses.py
update_table and moto/dynamodb/models/table.py Table.describe): moto
ignores ReplicaUpdates and never reports Replicas, so a replica the
blueprint asks for is never made and every plan asks for it again.

AWS's rules, from the DynamoDB API Reference (UpdateTable ReplicaUpdates,
CreateReplicationGroupMemberAction, ReplicaDescription) and the Developer
Guide (global tables 2019.11.21): one replica change per request; the
replica has the table's key schema and attributes; a replica of a table
under a customer-managed key is encrypted with the key given for its
region; adding a replica in the table's own region or one already there is
a ValidationException; Replicas lists the other members with their status
and key; the table's stream must be enabled (NEW_AND_OLD_IMAGES).

Only the control plane is emulated: items written to one member are not
copied to the others.
"""

from moto.dynamodb import responses
from moto.dynamodb.exceptions import MockValidationException
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.table import Table

UPSTREAM = {}


def _group(table):
    """The regions of table's global table group and their keys."""
    return getattr(table, "portal_replica_group", None)


def _create_replica(backend, table, action):
    region = action.get("RegionName")
    if not region or region == table.region_name:
        raise MockValidationException(f"Cannot add replica in region {region}: it is the table's own region")
    group = _group(table)
    if group is None:
        key = (table.sse_specification or {}).get("KMSMasterKeyId") if (table.sse_specification or {}).get("Enabled") else None
        group = {table.region_name: key}
    if region in group:
        raise MockValidationException(f"Failed to create a the new replica of table with name: {table.name} because one or more replicas already existed as tables.")
    spec = table.stream_specification or {}
    if not spec.get("StreamEnabled") or spec.get("StreamViewType") != "NEW_AND_OLD_IMAGES":
        raise MockValidationException("Table needs to have streams enabled with StreamViewType NEW_AND_OLD_IMAGES before replicas can be added")
    other = dynamodb_backends[backend.account_id][region]
    if table.name in other.tables:
        raise MockValidationException(f"Failed to create a the new replica of table with name: {table.name} because one or more replicas already existed as tables.")
    key = action.get("KMSMasterKeyId")
    sse = {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key} if key else None
    replica = other.create_table(
        table.name,
        schema=table.schema,
        throughput=getattr(table, "throughput", None) if table.billing_mode == "PROVISIONED" else None,
        attr=table.attr,
        global_indexes=None,
        indexes=None,
        streams={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        billing_mode=table.billing_mode,
        sse_specification=sse,
        tags=[],
        deletion_protection_enabled=False,
        warm_throughput=None,
    )
    group[region] = key
    for r in group:
        member = table if r == table.region_name else (replica if r == region else dynamodb_backends[backend.account_id][r].tables.get(table.name))
        if member is not None:
            member.portal_replica_group = group


def _delete_replica(backend, table, action):
    region = action.get("RegionName")
    group = _group(table)
    if not group or region not in group or region == table.region_name:
        raise MockValidationException(f"Replica in region {region} does not exist for table {table.name}")
    dynamodb_backends[backend.account_id][region].tables.pop(table.name, None)
    del group[region]
    if len(group) == 1:
        table.portal_replica_group = None


def _update_table(self):
    updates = self.body.get("ReplicaUpdates")
    if not updates:
        return UPSTREAM["update_table"](self)
    if len(updates) != 1:
        raise MockValidationException("Only one replica update is allowed per UpdateTable request")
    table = self.dynamodb_backend.get_table(self.body["TableName"])
    if self.body.get("StreamSpecification"):
        self.dynamodb_backend.update_table_streams(table, self.body["StreamSpecification"])
    u = updates[0]
    if "Create" in u:
        _create_replica(self.dynamodb_backend, table, u["Create"])
    elif "Delete" in u:
        _delete_replica(self.dynamodb_backend, table, u["Delete"])
    else:
        raise MockValidationException("ReplicaUpdates: Update of a replica's settings is not supported by this endpoint")
    return responses.DynamoResult(table.describe())


def _describe(self, base_key="TableDescription"):
    result = UPSTREAM["describe"](self, base_key=base_key)
    group = _group(self)
    if group:
        result[base_key]["GlobalTableVersion"] = "2019.11.21"
        result[base_key]["Replicas"] = [
            dict({"RegionName": r, "ReplicaStatus": "ACTIVE"}, **({"KMSMasterKeyId": k} if k else {}))
            for r, k in sorted(group.items())
            if r != self.region_name
        ]
    return result


def apply() -> None:
    if UPSTREAM:
        return
    UPSTREAM["update_table"] = responses.DynamoHandler.update_table
    UPSTREAM["describe"] = Table.describe
    responses.DynamoHandler.update_table = _update_table
    Table.describe = _describe
