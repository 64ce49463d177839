package drivers

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"portal/internal/engine"
)

// TextractCapability declares that a role may call Textract on a bucket's
// documents. Textract has nothing to create (it is an API, not a resource),
// so this is a data source: Read checks, in IAM, that the role exists and
// that its policies allow each listed operation and s3:GetObject on the
// input bucket's objects (Textract reads the documents with the caller's
// permissions). Read fails with a message naming what is missing.
//
// Fields: role (role ARN), input_bucket (bucket ARN), operations.
// Outputs: role_arn, role_name, operations (comma-joined).
//
// During planning the role may not exist yet (its ARN is known only after
// apply); Read then reports the capability as pending instead of "nothing
// matches", and the real check runs when the apply reaches this step.
type TextractCapability struct{}

func (TextractCapability) Type() string       { return "textract_capability" }
func (TextractCapability) ForceNew() []string { return nil }
func (TextractCapability) IsDataSource() bool { return true }

func (TextractCapability) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	roleARN := d.String("role")
	if roleARN == "" && prior != nil {
		roleARN = prior.Outputs["role_arn"]
	}
	if engine.IsUnknown(d.Fields["role"]) || engine.IsUnknown(d.Fields["input_bucket"]) {
		// Known after apply: nothing to check yet (see the type's comment).
		return &engine.Live{Region: d.Region, Outputs: map[string]string{}, Fields: map[string]any{}, Tags: map[string]string{}}, nil
	}
	if roleARN == "" {
		return nil, engine.ErrNotFound
	}
	name := path.Base(roleARN) // arn:aws:iam::123:role/path/name
	c := iamClient(env)
	out, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
	if engine.IsCode(err, "NoSuchEntity") {
		return nil, fmt.Errorf("textract: role %s does not exist: %w", roleARN, engine.ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("get role %s: %w", name, err)
	}
	if got := aws.ToString(out.Role.Arn); got != roleARN {
		return nil, fmt.Errorf("textract: role %s does not exist (IAM has %s under that name): %w", roleARN, got, engine.ErrNotFound)
	}
	grants, err := roleStatements(ctx, c, name)
	if err != nil {
		return nil, err
	}
	ops := d.Strings("operations")
	var missing []string
	for _, op := range ops {
		if !allowed(grants, "textract:"+op, "*") {
			missing = append(missing, "textract:"+op)
		}
	}
	if bucket := d.String("input_bucket"); bucket != "" && !allowed(grants, "s3:GetObject", bucket+"/document.pdf") {
		missing = append(missing, "s3:GetObject on "+bucket+"/*")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("textract: role %s may not call %s: no attached or inline policy allows it (or one denies it)", roleARN, strings.Join(missing, ", "))
	}
	return &engine.Live{
		PhysicalID: roleARN,
		Region:     d.Region,
		Outputs:    map[string]string{"role_arn": roleARN, "role_name": name, "operations": strings.Join(ops, ",")},
		Fields:     map[string]any{},
		Tags:       map[string]string{},
	}, nil
}

// roleStatements returns the statements of every policy attached to or
// embedded in role.
func roleStatements(ctx context.Context, c *iam.Client, role string) ([]policyStatement, error) {
	var out []policyStatement
	pg := iam.NewListAttachedRolePoliciesPaginator(c, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(role)})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list policies of role %s: %w", role, err)
		}
		for _, ap := range page.AttachedPolicies {
			pol, err := c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: ap.PolicyArn})
			if err != nil {
				return nil, fmt.Errorf("get policy %s: %w", aws.ToString(ap.PolicyArn), err)
			}
			ver, err := c.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: ap.PolicyArn, VersionId: pol.Policy.DefaultVersionId})
			if err != nil {
				return nil, fmt.Errorf("get policy %s version: %w", aws.ToString(ap.PolicyArn), err)
			}
			doc, err := parsePolicy(aws.ToString(ver.PolicyVersion.Document))
			if err != nil {
				return nil, fmt.Errorf("policy %s: %w", aws.ToString(ap.PolicyArn), err)
			}
			out = append(out, doc.Statement...)
		}
	}
	inline, err := c.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(role)})
	if err != nil {
		return nil, fmt.Errorf("list inline policies of role %s: %w", role, err)
	}
	for _, n := range inline.PolicyNames {
		rp, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(role), PolicyName: aws.String(n)})
		if err != nil {
			return nil, fmt.Errorf("get inline policy %s of role %s: %w", n, role, err)
		}
		doc, err := parsePolicy(aws.ToString(rp.PolicyDocument))
		if err != nil {
			return nil, fmt.Errorf("inline policy %s of role %s: %w", n, role, err)
		}
		out = append(out, doc.Statement...)
	}
	return out, nil
}

// allowed evaluates action on resource against statements the way IAM
// does for identity policies without conditions: an explicit Deny wins,
// otherwise an Allow is needed. Wildcards * and ? match as in IAM.
func allowed(sts []policyStatement, action, resource string) bool {
	ok := false
	for _, st := range sts {
		if !matchesAny(st.Action, action, true) || !matchesAny(st.Resource, resource, false) {
			continue
		}
		switch st.Effect {
		case "Deny":
			return false
		case "Allow":
			ok = true
		}
	}
	return ok
}

func matchesAny(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		if fold {
			p, s = strings.ToLower(p), strings.ToLower(s)
		}
		if globMatch(p, s) {
			return true
		}
	}
	return false
}

// globMatch matches s against an IAM pattern where * is any run of
// characters (slashes included) and ? one character.
func globMatch(p, s string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for i := len(s); i >= 0; i-- {
				if globMatch(p[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
		default:
			if s == "" || s[0] != p[0] {
				return false
			}
		}
		p, s = p[1:], s[1:]
	}
	return s == ""
}

// Create, Update and Delete are never called for a data source; they
// refuse rather than pretend.
func (TextractCapability) Create(context.Context, *engine.Env, *engine.Desired) (*engine.Live, error) {
	return nil, fmt.Errorf("textract_capability is a check, there is nothing to create")
}

func (TextractCapability) Update(context.Context, *engine.Env, *engine.Desired, *engine.Live, []engine.FieldChange) (*engine.Live, error) {
	return nil, fmt.Errorf("textract_capability is a check, there is nothing to update")
}

func (TextractCapability) Delete(context.Context, *engine.Env, *engine.Live) error { return nil }
