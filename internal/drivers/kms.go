package drivers

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"portal/internal/engine"
)

// KMSKey manages customer-managed symmetric keys with rotation and an alias.
//
// Fields: alias (alias/...), rotation (bool), description, data_class.
// Outputs: arn, id, alias.
type KMSKey struct{}

func (KMSKey) Type() string       { return "kms_key" }
func (KMSKey) ForceNew() []string { return nil }

func (KMSKey) client(env *engine.Env, region string) *kms.Client {
	return kms.NewFromConfig(env.Config(region))
}

func (k KMSKey) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	c := k.client(env, d.Region)
	keyID := ""
	if prior != nil {
		keyID = prior.PhysicalID
	} else if alias := d.String("alias"); alias != "" {
		// No record: the alias names the key.
		keyID = alias
	}
	var out *kms.DescribeKeyOutput
	var err error
	if keyID != "" {
		out, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	}
	if keyID == "" || (prior == nil && engine.IsCode(err, "NotFoundException")) {
		// A key created by an attempt cut short before its alias was set
		// is found by its ownership tags.
		keyID, err = k.findByTags(ctx, env, d)
		if err != nil {
			return nil, err
		}
		out, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	}
	if engine.IsCode(err, "NotFoundException") {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("describe key %s: %w", keyID, err)
	}
	md := out.KeyMetadata
	if md.KeyState == types.KeyStatePendingDeletion {
		return nil, engine.ErrNotFound
	}
	id := aws.ToString(md.KeyId)
	live := &engine.Live{
		PhysicalID: id,
		Region:     d.Region,
		Outputs:    map[string]string{"arn": aws.ToString(md.Arn), "id": id},
		Fields:     map[string]any{},
		Tags:       map[string]string{},
	}
	if d.Has("description") {
		live.Fields["description"] = aws.ToString(md.Description)
	}
	rot, err := c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(id)})
	if err != nil {
		return nil, fmt.Errorf("key rotation status %s: %w", id, err)
	}
	live.Fields["rotation"] = rot.KeyRotationEnabled
	aliases, err := c.ListAliases(ctx, &kms.ListAliasesInput{KeyId: aws.String(id)})
	if err != nil {
		return nil, fmt.Errorf("list aliases of %s: %w", id, err)
	}
	live.Fields["alias"] = ""
	for _, a := range aliases.Aliases {
		live.Fields["alias"] = aws.ToString(a.AliasName)
		live.Outputs["alias"] = aws.ToString(a.AliasName)
	}
	tags, err := c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(id)})
	if err != nil {
		return nil, fmt.Errorf("list tags of %s: %w", id, err)
	}
	for _, t := range tags.Tags {
		live.Tags[aws.ToString(t.TagKey)] = aws.ToString(t.TagValue)
	}
	return live, nil
}

// findByTags returns the id of the live key tagged as d, or ErrNotFound.
func (KMSKey) findByTags(ctx context.Context, env *engine.Env, d *engine.Desired) (string, error) {
	arns, err := findTagged(ctx, env, d.Region, "kms:key", d.ID)
	if err != nil {
		return "", err
	}
	c := kms.NewFromConfig(env.Config(d.Region))
	for _, arn := range arns {
		out, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(arn)})
		if err == nil && out.KeyMetadata.KeyState != types.KeyStatePendingDeletion {
			return aws.ToString(out.KeyMetadata.KeyId), nil
		}
	}
	return "", engine.ErrNotFound
}

func kmsTags(tags map[string]string) []types.Tag {
	out := make([]types.Tag, 0, len(tags))
	for _, k := range sortedKeys(tags) {
		out = append(out, types.Tag{TagKey: aws.String(k), TagValue: aws.String(tags[k])})
	}
	return out
}

func (k KMSKey) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	c := k.client(env, d.Region)
	desc := d.String("description")
	if desc == "" {
		desc = fmt.Sprintf("%s %s key (%s)", env.Stack.ID, d.String("data_class"), d.ID)
	}
	out, err := c.CreateKey(ctx, &kms.CreateKeyInput{
		Description: aws.String(desc),
		KeySpec:     types.KeySpecSymmetricDefault,
		KeyUsage:    types.KeyUsageTypeEncryptDecrypt,
		Tags:        kmsTags(d.Tags),
	})
	if err != nil {
		return nil, fmt.Errorf("create key: %w", err)
	}
	id := aws.ToString(out.KeyMetadata.KeyId)
	env.Logf("created key %s", id)
	if err := k.apply(ctx, c, env, d, id, nil); err != nil {
		return nil, err
	}
	return k.Read(ctx, env, d, &engine.Prior{PhysicalID: id, Region: d.Region})
}

// apply brings rotation and alias of key id to what d asks.
func (k KMSKey) apply(ctx context.Context, c *kms.Client, env *engine.Env, d *engine.Desired, id string, live *engine.Live) error {
	if live == nil || live.Fields["rotation"] != d.Bool("rotation") {
		var err error
		if d.Bool("rotation") {
			_, err = c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(id)})
		} else {
			_, err = c.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: aws.String(id)})
		}
		if err != nil {
			return fmt.Errorf("set rotation on %s: %w", id, err)
		}
	}
	want := d.String("alias")
	have := ""
	if live != nil {
		have, _ = live.Fields["alias"].(string)
	}
	if want != have {
		if have != "" {
			if _, err := c.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String(have)}); err != nil && !engine.IsCode(err, "NotFoundException") {
				return fmt.Errorf("delete alias %s: %w", have, err)
			}
		}
		if want != "" {
			if _, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(want), TargetKeyId: aws.String(id)}); err != nil {
				return fmt.Errorf("create alias %s: %w", want, err)
			}
			env.Logf("alias %s -> %s", want, id)
		}
	}
	return nil
}

func (k KMSKey) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := k.client(env, d.Region)
	for _, ch := range changes {
		switch ch.Path {
		case "description":
			if _, err := c.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: aws.String(live.PhysicalID), Description: aws.String(d.String("description"))}); err != nil {
				return nil, fmt.Errorf("update description of %s: %w", live.PhysicalID, err)
			}
		case "tags":
			if _, err := c.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(live.PhysicalID), Tags: kmsTags(d.Tags)}); err != nil {
				return nil, fmt.Errorf("tag %s: %w", live.PhysicalID, err)
			}
		}
	}
	if err := k.apply(ctx, c, env, d, live.PhysicalID, live); err != nil {
		return nil, err
	}
	return k.Read(ctx, env, d, &engine.Prior{PhysicalID: live.PhysicalID, Region: d.Region})
}

// Delete removes the alias and schedules the key for deletion after the
// shortest waiting period AWS allows (7 days); until then it can be
// cancelled.
func (k KMSKey) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := k.client(env, live.Region)
	if a := live.Outputs["alias"]; a != "" {
		if _, err := c.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String(a)}); err != nil && !engine.IsCode(err, "NotFoundException") {
			return fmt.Errorf("delete alias %s: %w", a, err)
		}
	}
	_, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(live.PhysicalID), PendingWindowInDays: aws.Int32(7)})
	if err != nil && !engine.IsCode(err, "NotFoundException", "KMSInvalidStateException") {
		return fmt.Errorf("schedule deletion of %s: %w", live.PhysicalID, err)
	}
	env.Logf("key %s scheduled for deletion in 7 days", live.PhysicalID)
	return nil
}
