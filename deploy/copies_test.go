package deploy

import (
	"bytes"
	"os"
	"testing"
)

// TestChartCopiesAreCanonical checks that the chart's copies of the
// alerting rules and the dashboard equal the canonical files: helm reads
// files inside the chart only, so the chart carries copies.
func TestChartCopiesAreCanonical(t *testing.T) {
	for _, c := range []struct{ canonical, copy string }{
		{"prometheus/alerts.yaml", "helm/pushgate/files/alerts.yaml"},
		{"grafana/pushgate.json", "helm/pushgate/files/pushgate.json"},
	} {
		t.Run(c.canonical, func(t *testing.T) {
			want, err := os.ReadFile(c.canonical)
			if err != nil {
				t.Fatalf("the canonical file: %v", err)
			}
			got, err := os.ReadFile(c.copy)
			if err != nil {
				t.Fatalf("the chart's copy: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("deploy/%s differs from deploy/%s; copy it:\n  cp deploy/%s deploy/%s", c.copy, c.canonical, c.canonical, c.copy)
			}
		})
	}
}
