package orgguard

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"

	"portal/internal/accounts"
	"portal/internal/audit"
	"portal/internal/blueprints"
	"portal/internal/engine"
	"portal/internal/guardrails"
	"portal/internal/regions"
	"portal/internal/workflows"
)

// StackID is the stack of the organization's policies.
const StackID = workflows.OrganizationStack

// Stack is the organization's policies as a stack of org_scp resources,
// attached to the root, in the management account. It holds no patient
// data; its jurisdiction is "us" (Organizations' API region) only because
// the engine's guardrails need one.
func Stack(envs []string, prodAccount string) *blueprints.Stack {
	pols := All(envs, prodAccount)
	h := sha256.New()
	var rs []blueprints.Resource
	for _, p := range pols {
		fmt.Fprintf(h, "%s\n%s\n", p.Name, p.Document())
		rs = append(rs, blueprints.Resource{ID: strings.ReplaceAll(p.Name, "-", "_"), Type: "org_scp", Region: apiRegion,
			Fields: map[string]any{"name": p.Name, "description": p.Description, "content": p.Document(), "targets": []any{RootTarget}}})
	}
	version := "org-" + hex.EncodeToString(h.Sum(nil))[:12]
	return blueprints.NewStack(StackID, "prod", "us", apiRegion, version, rs)
}

// Service plans and applies the organization's policies and reports
// whether AWS has them attached.
type Service struct {
	Engine *engine.Engine
	// Configs reaches the management account (accounts.Management).
	Configs engine.ConfigSource
	// ManagementAccount is the organization's management account; empty
	// when none is configured.
	ManagementAccount string
	// Environments maps each environment to its account.
	Environments map[string]string
	Now          func() time.Time
}

// Configured reports whether a management account is known.
func (s *Service) Configured() bool { return s != nil && s.ManagementAccount != "" }

func (s *Service) envNames() []string {
	var out []string
	for _, e := range regions.EnvironmentNames() {
		if s.Environments[e] != "" {
			out = append(out, e)
		}
	}
	return out
}

// Policies are the policies the portal keeps in the organization.
func (s *Service) Policies() []SCP { return All(s.envNames(), s.Environments["prod"]) }

func (s *Service) target() engine.Target {
	st := Stack(s.envNames(), s.Environments["prod"])
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	var exc []guardrails.Exception
	for _, rule := range []string{"cloudtrail-integrity", "prod-alarms"} {
		exc = append(exc, guardrails.Exception{RuleID: rule, Stack: StackID, Owner: "portal",
			Reason: "the stack holds the organization's service control policies only; each account's trail and alarms are in its jurisdiction stacks", Expires: now().Add(time.Hour)})
	}
	return engine.Target{Stack: st, BlueprintVersion: st.Version, Exceptions: exc,
		Info: engine.StackInfo{ID: StackID, Environment: accounts.Management, Jurisdiction: st.Jurisdiction, Region: apiRegion, Version: st.Version, AccountID: s.ManagementAccount}}
}

// Plan plans the policies and stores the plan (audited by the engine).
func (s *Service) Plan(ctx context.Context, by audit.Entry) (*engine.Plan, error) {
	if !s.Configured() {
		return nil, fmt.Errorf("orgguard: no management account is configured (-management-account-id)")
	}
	p, err := s.Engine.Plan(ctx, s.target(), "apply")
	if err != nil {
		return nil, err
	}
	p.CreatedBy = by.Actor
	if err := s.Engine.SavePlan(ctx, by, p); err != nil {
		return nil, err
	}
	return p, nil
}

// PolicyStatus is one policy as AWS has it.
type PolicyStatus struct {
	SCP
	// ID is the policy's id in the organization; empty when it does not
	// exist there.
	ID string
	// AttachedToRoot reports whether AWS applies it to every member account.
	AttachedToRoot bool
	// Current reports whether its content is the portal's.
	Current bool
}

// Status reads each policy from the organization.
func (s *Service) Status(ctx context.Context) ([]PolicyStatus, error) {
	if !s.Configured() {
		return nil, fmt.Errorf("orgguard: no management account is configured")
	}
	cfg, err := s.Configs(accounts.Management, apiRegion)
	if err != nil {
		return nil, err
	}
	c := organizations.NewFromConfig(cfg)
	r, err := root(ctx, c)
	if err != nil {
		return nil, err
	}
	var out []PolicyStatus
	for _, p := range s.Policies() {
		st := PolicyStatus{SCP: p}
		id, err := findPolicy(ctx, c, p.Name)
		if err == nil {
			st.ID = id
			d, err := c.DescribePolicy(ctx, &organizations.DescribePolicyInput{PolicyId: aws.String(id)})
			if err != nil {
				return nil, fmt.Errorf("orgguard: describe %s: %s", p.Name, engine.Explain(err))
			}
			st.Current = sameJSON(aws.ToString(d.Policy.Content), p.Document())
			ts, err := c.ListTargetsForPolicy(ctx, &organizations.ListTargetsForPolicyInput{PolicyId: aws.String(id)})
			if err != nil {
				return nil, fmt.Errorf("orgguard: targets of %s: %s", p.Name, engine.Explain(err))
			}
			for _, t := range ts.Targets {
				st.AttachedToRoot = st.AttachedToRoot || aws.ToString(t.TargetId) == aws.ToString(r.Id)
			}
		} else if !errors.Is(err, engine.ErrNotFound) {
			return nil, fmt.Errorf("orgguard: %s", engine.Explain(err))
		}
		out = append(out, st)
	}
	return out, nil
}
