package drivers

// SubnetsByTier exposes subnetsByTier to the tests of package drivers_test.
var SubnetsByTier = subnetsByTier
