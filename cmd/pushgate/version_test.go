package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// TestVersion: pushgate -version names the build: the version and
// revision given at link time (the image's build arguments), else those Go
// records from the checkout it was built in.
func TestVersion(t *testing.T) {
	t.Parallel() // go build
	dir := t.TempDir()
	bin := filepath.Join(dir, "pushgate")
	version := func(args ...string) string {
		t.Helper()
		build := exec.Command("go", append(append([]string{"build", "-o", bin}, args...), ".")...)
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build %q: %v\n%s", args, err, out)
		}
		out, err := exec.Command(bin, "-version").Output()
		if err != nil {
			t.Fatalf("pushgate -version: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	want := "pushgate v1.4.0 (revision 0123456789abcdef, " + runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")"
	if got := version("-ldflags", "-X main.version=v1.4.0 -X main.revision=0123456789abcdef"); got != want {
		t.Errorf("linked version: %q, want %q", got, want)
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("no git checkout to read a revision from: %v", err)
	}
	got := version("-buildvcs=true")
	re := regexp.MustCompile(`^pushgate v\S+ \(revision ` + strings.TrimSpace(string(head)) + `(-dirty)?, go`)
	if !re.MatchString(got) {
		t.Errorf("built in the checkout: %q, want the module version and revision %s", got, head)
	}
}
