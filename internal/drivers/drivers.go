// Package drivers holds one engine.Driver per blueprint resource type, on
// aws-sdk-go-v2. Each file handles one service; each driver declares the
// narrow slice of the SDK it calls, builds its client from the Env's
// per-region configuration, reads resources by their recorded id or, when
// the portal has no record, by name or ownership tags, and waits until a
// resource is usable before returning from Create or Update.
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
