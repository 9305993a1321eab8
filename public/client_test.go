package public_test

import (
	"io/fs"
	"regexp"
	"slices"
	"testing"

	"github.com/pushgate/pushgate/public"
)

// TestClientTypesMatchExports: client.d.ts declares exactly what client.js
// exports, so a TypeScript app never calls what is not there.
func TestClientTypesMatchExports(t *testing.T) {
	names := func(file, pattern string) []string {
		src, err := fs.ReadFile(public.Files, file)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range regexp.MustCompile(pattern).FindAllStringSubmatch(string(src), -1) {
			out = append(out, m[1])
		}
		slices.Sort(out)
		return out
	}
	js := names("client.js", `(?m)^export (?:async function|function|class|const) (\w+)`)
	ts := names("client.d.ts", `(?m)^export (?:declare )?(?:function|class|const) (\w+)`)
	if len(js) == 0 || !slices.Equal(js, ts) {
		t.Fatalf("client.js exports %v, client.d.ts declares %v", js, ts)
	}
}
