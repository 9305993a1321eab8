package deploy

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// schemaNode is the part of values.schema.json that says which values
// exist.
type schemaNode struct {
	Properties map[string]schemaNode `json:"properties"`
}

// documentedWhole are values whose fields the README documents in one row.
var documentedWhole = []string{"probes.liveness", "probes.readiness"}

// valuePaths lists every value the schema declares, by dotted path.
func valuePaths(prefix string, n schemaNode) []string {
	var out []string
	for name, child := range n.Properties {
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		if len(child.Properties) > 0 && !slices.Contains(documentedWhole, p) {
			out = append(out, valuePaths(p, child)...)
		} else {
			out = append(out, p)
		}
	}
	return out
}

// TestReadmeDocumentsEveryValue checks that the chart's README has a row in
// its values table for every value of values.schema.json, and none for a
// value that does not exist.
func TestReadmeDocumentsEveryValue(t *testing.T) {
	raw, err := os.ReadFile(chartDir + "/values.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema schemaNode
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(chartDir + "/README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(readme), "\n## Values\n")
	if !ok {
		t.Fatal("README.md has no Values section")
	}
	table, _, _ = strings.Cut(table, "\n## ")
	documented := map[string]bool{}
	name := regexp.MustCompile("`([^`]+)`")
	for line := range strings.Lines(table) {
		first, _, ok := strings.Cut(strings.TrimPrefix(line, "| "), " |")
		if !ok || !strings.HasPrefix(line, "| `") {
			continue
		}
		for _, m := range name.FindAllStringSubmatch(first, -1) {
			documented[m[1]] = true
		}
	}
	paths := valuePaths("", schema)
	sort.Strings(paths)
	for _, p := range paths {
		if p == "global" {
			continue // Helm's, for a parent chart
		}
		if !documented[p] {
			t.Errorf("README.md's values table has no row for %s", p)
		}
		delete(documented, p)
	}
	for p := range documented {
		t.Errorf("README.md documents %s, which values.schema.json does not declare", p)
	}
}
