// Package drivers holds one engine.Driver per blueprint resource type, on
// aws-sdk-go-v2. Each file handles one service; each driver builds the
// service's SDK client (*s3.Client, *ec2.Client, ...) from the Env's
// per-region configuration and calls it directly, reads resources by their
// recorded id or, when the portal has no record, by name or ownership
// tags, and waits until a resource is usable before returning from Create
// or Update. Drivers are tested against moto, not against narrowed
// interfaces: the only interfaces here stand for what the SDK does not
// offer (CNAMEResolver, NSResolver: DNS as the internet answers it).
package drivers

import (
	"portal/internal/engine"
)

// All returns a driver for every resource type the blueprints use.
func All() []engine.Driver {
	return []engine.Driver{
		KMSKey{}, KMSKeyPolicy{},
		ACMCertificate{},
		S3Bucket{}, S3Object{},
		S3Replication{},
		DynamoDBTable{}, DynamoDBTableReplica{},
		SNSTopic{}, SNSSubscription{},
		LogGroup{}, MetricAlarm{},
		CloudTrail{},
		VPC{}, VPCEndpoints{}, SecurityGroup{}, AMI{}, LaunchTemplate{},
		DBSubnetGroup{}, RDSInstance{}, RDSReadReplica{},
		ALB{}, TargetGroup{}, Listener{},
		AutoScalingGroup{}, ScalingPolicy{},
		IAMPolicy{}, IAMRole{}, IAMServiceLinkedRole{}, InstanceProfile{}, TextractCapability{},
		Route53Zone{}, DNSDelegation{}, Route53HealthCheck{}, Route53Record{},
		CloudFrontDistribution{},
	}
}
