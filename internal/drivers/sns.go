package drivers

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"

	"portal/internal/engine"
)

// SNSTopic manages a topic encrypted with a customer-managed key.
//
// Fields: name, kms_key (KmsMasterKeyId); data_class and description are
// informational. Outputs: arn, name, id (the ARN).
type SNSTopic struct{}

func (SNSTopic) Type() string       { return "sns_topic" }
func (SNSTopic) ForceNew() []string { return []string{"name"} }

func snsClient(env *engine.Env, region string) *sns.Client {
	return sns.NewFromConfig(env.Config(region))
}

// snsFindTopic returns the ARN of the topic called name, or "".
func snsFindTopic(ctx context.Context, c *sns.Client, name string) (string, error) {
	p := sns.NewListTopicsPaginator(c, &sns.ListTopicsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("list topics: %w", err)
		}
		for _, t := range page.Topics {
			if arn := aws.ToString(t.TopicArn); strings.HasSuffix(arn, ":"+name) {
				return arn, nil
			}
		}
	}
	return "", nil
}

func (t SNSTopic) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := snsClient(env, d.Region)
	arn := ""
	if prior != nil {
		arn = prior.PhysicalID
	} else if name := d.String("name"); refResolved(name) {
		var err error
		if arn, err = snsFindTopic(ctx, c, name); err != nil {
			return nil, err
		}
	}
	if arn == "" {
		return nil, engine.ErrNotFound
	}
	attrs, err := c.GetTopicAttributes(ctx, &sns.GetTopicAttributesInput{TopicArn: aws.String(arn)})
	if engine.IsCode(err, "NotFound") {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("get attributes of topic %s: %w", arn, err)
	}
	name := arn[strings.LastIndex(arn, ":")+1:]
	live := &engine.Live{
		PhysicalID: arn,
		Region:     d.Region,
		Outputs:    map[string]string{"arn": arn, "name": name, "id": arn},
		Fields:     map[string]any{"name": name, "kms_key": attrs.Attributes["KmsMasterKeyId"]},
		Tags:       map[string]string{},
	}
	tags, err := c.ListTagsForResource(ctx, &sns.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	if err != nil {
		return nil, fmt.Errorf("list tags of topic %s: %w", arn, err)
	}
	for _, tag := range tags.Tags {
		live.Tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	return live, nil
}

func snsTags(tags map[string]string) []types.Tag {
	out := make([]types.Tag, 0, len(tags))
	for _, k := range sortedKeys(tags) {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

// Create makes the topic. CreateTopic is idempotent by name when the
// attributes and tags match, so a Create retried after a crash returns the
// same topic.
func (t SNSTopic) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	c := snsClient(env, d.Region)
	in := &sns.CreateTopicInput{Name: aws.String(d.String("name")), Tags: snsTags(d.Tags), Attributes: map[string]string{}}
	if k := d.String("kms_key"); k != "" {
		in.Attributes["KmsMasterKeyId"] = k
	}
	out, err := c.CreateTopic(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("create topic %s: %w", d.String("name"), err)
	}
	arn := aws.ToString(out.TopicArn)
	env.Logf("created topic %s", arn)
	return t.Read(ctx, env, d, &engine.Prior{PhysicalID: arn, Region: d.Region})
}

func (t SNSTopic) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := snsClient(env, live.Region)
	for _, ch := range changes {
		switch ch.Path {
		case "kms_key":
			_, err := c.SetTopicAttributes(ctx, &sns.SetTopicAttributesInput{TopicArn: aws.String(live.PhysicalID), AttributeName: aws.String("KmsMasterKeyId"), AttributeValue: aws.String(d.String("kms_key"))})
			if err != nil {
				return nil, fmt.Errorf("set key of topic %s: %w", live.PhysicalID, err)
			}
			env.Logf("topic %s: key %s", live.PhysicalID, d.String("kms_key"))
		case "tags":
			if _, err := c.TagResource(ctx, &sns.TagResourceInput{ResourceArn: aws.String(live.PhysicalID), Tags: snsTags(d.Tags)}); err != nil {
				return nil, fmt.Errorf("tag topic %s: %w", live.PhysicalID, err)
			}
		}
	}
	return t.Read(ctx, env, d, &engine.Prior{PhysicalID: live.PhysicalID, Region: live.Region})
}

func (SNSTopic) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	_, err := snsClient(env, live.Region).DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: aws.String(live.PhysicalID)})
	if err != nil && !engine.IsCode(err, "NotFound") {
		return fmt.Errorf("delete topic %s: %w", live.PhysicalID, err)
	}
	env.Logf("deleted topic %s", live.PhysicalID)
	return nil
}

// SNSSubscription subscribes a list of endpoints to a topic with one
// protocol: one subscription per endpoint.
//
// Fields: topic (ARN), protocol, endpoints. Outputs: topic_arn, id (the
// topic ARN) and subscription_arns (comma-separated).
//
// Subscriptions carry no tags. The resource claims the subscriptions of
// its protocol on its topic, and reports the ownership tags when the topic
// belongs to the stack. A subscription still pending confirmation is
// listed by AWS without its ARN; the driver remembers the ARN Subscribe
// returned (ReturnSubscriptionArn) in its outputs, so Delete can
// unsubscribe it too.
type SNSSubscription struct{}

func (SNSSubscription) Type() string       { return "sns_subscription" }
func (SNSSubscription) ForceNew() []string { return []string{"topic", "protocol"} }

const snsPending = "PendingConfirmation"

type snsSub struct{ arn, endpoint string }

// list returns the subscriptions of protocol on topic.
func (SNSSubscription) list(ctx context.Context, c *sns.Client, topic, protocol string) ([]snsSub, error) {
	var out []snsSub
	p := sns.NewListSubscriptionsByTopicPaginator(c, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(topic)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, s := range page.Subscriptions {
			if aws.ToString(s.Protocol) == protocol {
				out = append(out, snsSub{arn: aws.ToString(s.SubscriptionArn), endpoint: aws.ToString(s.Endpoint)})
			}
		}
	}
	return out, nil
}

func (s SNSSubscription) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	topic, protocol := d.String("topic"), d.String("protocol")
	if prior != nil && prior.PhysicalID != "" {
		topic = prior.PhysicalID
	}
	if !refResolved(topic) {
		return nil, engine.ErrNotFound
	}
	region := snsRegion(topic, d.Region)
	c := snsClient(env, region)
	subs, err := s.list(ctx, c, topic, protocol)
	if engine.IsCode(err, "NotFound") {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("list subscriptions of topic %s: %w", topic, err)
	}
	// A pending subscription is listed without its ARN: take the one
	// Subscribe returned, if the portal recorded it and it still exists.
	var remembered []string
	if prior != nil {
		remembered = splitARNs(prior.Outputs["subscription_arns"])
	}
	var arns, endpoints []string
	for _, sub := range subs {
		endpoints = append(endpoints, sub.endpoint)
		if sub.arn != snsPending {
			arns = append(arns, sub.arn)
		}
	}
	for _, arn := range remembered {
		if slices.Contains(arns, arn) {
			continue
		}
		attrs, err := c.GetSubscriptionAttributes(ctx, &sns.GetSubscriptionAttributesInput{SubscriptionArn: aws.String(arn)})
		if err == nil && slices.Contains(endpoints, attrs.Attributes["Endpoint"]) {
			arns = append(arns, arn)
		}
	}
	if len(subs) == 0 && len(d.Strings("endpoints")) > 0 {
		return nil, engine.ErrNotFound
	}
	sort.Strings(arns)
	live := &engine.Live{
		PhysicalID: topic,
		Region:     region,
		Outputs:    map[string]string{"topic_arn": topic, "id": topic, "subscription_arns": strings.Join(arns, ",")},
		Fields: map[string]any{
			"topic":     topic,
			"protocol":  protocol,
			"endpoints": snsOrdered(endpoints, d.Strings("endpoints")),
		},
		Tags: map[string]string{},
	}
	tags, err := c.ListTagsForResource(ctx, &sns.ListTagsForResourceInput{ResourceArn: aws.String(topic)})
	if err != nil {
		return nil, fmt.Errorf("list tags of topic %s: %w", topic, err)
	}
	for _, tag := range tags.Tags {
		if aws.ToString(tag.Key) == engine.TagStack {
			live.Tags[engine.TagStack] = aws.ToString(tag.Value)
			live.Tags[engine.TagResource] = d.ID
			live.Tags[engine.TagManaged] = "portal"
		}
	}
	return live, nil
}

// snsRegion is the region of a topic ARN, or fallback.
func snsRegion(arn, fallback string) string {
	if parts := strings.Split(arn, ":"); len(parts) > 3 && parts[3] != "" {
		return parts[3]
	}
	return fallback
}

func splitARNs(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// snsOrdered reports live endpoints in the blueprint's order when they are
// the same set, sorted otherwise.
func snsOrdered(have, want []string) []any {
	x, y := slices.Clone(have), slices.Clone(want)
	sort.Strings(x)
	sort.Strings(y)
	l := x
	if slices.Equal(x, y) {
		l = want
	}
	out := make([]any, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

func (s SNSSubscription) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	return s.reconcile(ctx, env, d, nil)
}

func (s SNSSubscription) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, _ []engine.FieldChange) (*engine.Live, error) {
	return s.reconcile(ctx, env, d, live)
}

// reconcile subscribes the endpoints d lists and unsubscribes the others
// of the protocol. Subscribe is idempotent for an endpoint already
// subscribed, so a Create retried after a crash makes no duplicates.
func (s SNSSubscription) reconcile(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live) (*engine.Live, error) {
	topic, protocol := d.String("topic"), d.String("protocol")
	region := snsRegion(topic, d.Region)
	c := snsClient(env, region)
	subs, err := s.list(ctx, c, topic, protocol)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions of topic %s: %w", topic, err)
	}
	var arns []string
	if live != nil {
		arns = splitARNs(live.Outputs["subscription_arns"])
	}
	want := d.Strings("endpoints")
	for _, e := range want {
		out, err := c.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(topic), Protocol: aws.String(protocol), Endpoint: aws.String(e), ReturnSubscriptionArn: true})
		if err != nil {
			return nil, fmt.Errorf("subscribe %s %s to %s: %w", protocol, e, topic, err)
		}
		if arn := aws.ToString(out.SubscriptionArn); !slices.Contains(arns, arn) {
			arns = append(arns, arn)
			env.Logf("subscribed %s %s to %s", protocol, e, topic)
		}
	}
	for _, sub := range subs {
		if slices.Contains(want, sub.endpoint) {
			continue
		}
		arn := sub.arn
		if arn == snsPending {
			arn = s.pendingARN(ctx, c, arns, sub.endpoint)
		}
		if arn == "" {
			env.Logf("%s %s is pending confirmation and its ARN is unknown: AWS drops it unconfirmed after 3 days", protocol, sub.endpoint)
			continue
		}
		if _, err := c.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: aws.String(arn)}); err != nil && !engine.IsCode(err, "NotFound") {
			return nil, fmt.Errorf("unsubscribe %s %s: %w", protocol, sub.endpoint, err)
		}
		env.Logf("unsubscribed %s %s from %s", protocol, sub.endpoint, topic)
	}
	prior := &engine.Prior{PhysicalID: topic, Region: region, Outputs: map[string]string{"subscription_arns": strings.Join(arns, ",")}}
	return s.Read(ctx, env, d, prior)
}

// pendingARN finds, among arns, the subscription of endpoint.
func (SNSSubscription) pendingARN(ctx context.Context, c *sns.Client, arns []string, endpoint string) string {
	for _, arn := range arns {
		attrs, err := c.GetSubscriptionAttributes(ctx, &sns.GetSubscriptionAttributesInput{SubscriptionArn: aws.String(arn)})
		if err == nil && attrs.Attributes["Endpoint"] == endpoint {
			return arn
		}
	}
	return ""
}

// Delete unsubscribes the subscriptions this resource made.
func (SNSSubscription) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := snsClient(env, live.Region)
	for _, arn := range splitARNs(live.Outputs["subscription_arns"]) {
		if _, err := c.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: aws.String(arn)}); err != nil && !engine.IsCode(err, "NotFound") {
			return fmt.Errorf("unsubscribe %s: %w", arn, err)
		}
		env.Logf("unsubscribed %s", arn)
	}
	return nil
}
