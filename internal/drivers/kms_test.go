package drivers_test

import (
	"testing"

	"portal/internal/drivers"
	"portal/internal/engine"
)

func TestKMSKey(t *testing.T) {
	t.Parallel()
	for _, region := range []string{"us-east-1", "eu-central-1", "ap-southeast-1"} {
		t.Run(region, func(t *testing.T) {
			env := newEnv(t, region)
			d := &engine.Desired{ID: "documents_key", Type: "kms_key", Region: region, Fields: map[string]any{
				"data_class": "documents", "rotation": false, "alias": "alias/medportal-dev-eu-documents",
			}}
			live := lifecycle(t, env, drivers.KMSKey{}, d, func(d *engine.Desired) []string {
				d.Fields["rotation"] = true
				d.Fields["alias"] = "alias/medportal-dev-eu-docs"
				return []string{"alias", "rotation"}
			})
			if live.Outputs["arn"] == "" || live.Outputs["alias"] != "alias/medportal-dev-eu-docs" {
				t.Errorf("outputs %v, want arn and the new alias", live.Outputs)
			}
		})
	}
}
