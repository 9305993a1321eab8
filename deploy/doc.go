// Package deploy checks the Helm chart in helm/pushgate: it lints and
// renders the chart with the helm library, decodes every rendered object
// strictly into its Kubernetes type, and holds the Deployment's ports,
// probes, flags and environment against what the pushgate binary accepts
// (`pushgate -h`). Inconsistent values must fail `helm template` with a
// clear message, and the chart's copies of the alerting rules and the
// dashboard must equal deploy/prometheus and deploy/grafana.
//
// The package has tests only; run them with `go test ./...` here, or
// .ci/deploy-chart from the repository root.
package deploy
