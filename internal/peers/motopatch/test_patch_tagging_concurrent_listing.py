"""Tests of patch_tagging_concurrent_listing (go test ./internal/peers runs
them with the moto venv's python)."""

import unittest

import boto3
from moto import mock_aws
from moto.resourcegroupstaggingapi import models

import patch_tagging_concurrent_listing as patch


class ConcurrentListing(unittest.TestCase):
    def setUp(self):
        self.mock = mock_aws()
        self.mock.start()
        patch.apply()

    def tearDown(self):
        self.mock.stop()

    def test_listing_is_complete_and_paginates(self):
        kms = boto3.client("kms", region_name="eu-central-1")
        for i in range(60):
            kms.create_key(Tags=[{"TagKey": "portal:stack", "TagValue": "dev-eu"}, {"TagKey": "n", "TagValue": str(i)}])
        tagging = boto3.client("resourcegroupstaggingapi", region_name="eu-central-1")
        pages = tagging.get_paginator("get_resources").paginate(TagFilters=[{"Key": "portal:stack", "Values": ["dev-eu"]}])
        arns = [r["ResourceARN"] for p in pages for r in p["ResourceTagMappingList"]]
        self.assertEqual(len(arns), 60)
        self.assertEqual(len(set(arns)), 60)
        self.assertIn("portal:stack", tagging.get_tag_keys()["TagKeys"])
        self.assertEqual(set(tagging.get_tag_values(Key="portal:stack")["TagValues"]), {"dev-eu"})

    def test_a_dictionary_changing_during_the_walk_is_walked_again(self):
        # What another request's new account or resource does to the walk,
        # made to happen on the first attempt only.
        walks = []
        upstream = patch.UPSTREAM["_get_resources_generator"]

        def changing(self, *args, **kwargs):
            walks.append(1)
            if len(walks) == 1:
                raise RuntimeError("dictionary changed size during iteration")
            yield from upstream(self, *args, **kwargs)

        wrapped = patch._settled(changing)
        kms = boto3.client("kms", region_name="eu-central-1")
        kms.create_key(Tags=[{"TagKey": "portal:stack", "TagValue": "dev-eu"}])
        backend = models.resourcegroupstaggingapi_backends["123456789012"]["eu-central-1"]
        found = list(wrapped(backend, tag_filters=[{"Key": "portal:stack", "Values": ["dev-eu"]}]))
        self.assertEqual(len(found), 1)
        self.assertEqual(len(walks), 2)


if __name__ == "__main__":
    unittest.main()
