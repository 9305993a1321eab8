package deploy

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
)

// TestSecretFilesAreRead checks that pushgate reads each
// PUSHGATE_<NAME>_FILE the chart sets: pointed at a file that does not
// exist, pushgate must refuse to start, naming the variable, the flag or
// the file. A pushgate that ignored the variable would start, and run
// with the secret unset.
func TestSecretFilesAreRead(t *testing.T) {
	bin := pushgateBinary(t)
	fs := pushgateFlags(t)
	variables := map[string]bool{}
	for _, s := range scenarios {
		var d appsv1.Deployment
		mustDecodeOne(t, render(t, s), "Deployment", &d)
		for _, e := range d.Spec.Template.Spec.Containers[0].Env {
			if _, file, ok := fs.flagOfEnv(e.Name); ok && file {
				variables[e.Name] = true
			}
		}
	}
	if len(variables) < len(everySecret) {
		t.Errorf("the scenarios set %d _FILE variables, want one per secret flag (%d)", len(variables), len(everySecret))
	}
	names := make([]string, 0, len(variables))
	for v := range variables {
		names = append(names, v)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			flag, _, _ := fs.flagOfEnv(name)
			missing := filepath.Join(t.TempDir(), "missing")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin)
			cmd.Env = []string{
				"PATH=/usr/bin:/bin",
				"PUSHGATE_ADDR=127.0.0.1:0",
				"PUSHGATE_SIM_ADDR=127.0.0.1:0",
				name + "=" + missing,
			}
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("pushgate started with %s=%s (a file that does not exist) and ran for 5 s: it ignores the variable, and would run without -%s\n%s", name, missing, flag, tail(out.String()))
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("pushgate with %s=%s: %v, want a refusal\n%s", name, missing, err, tail(out.String()))
			}
			if msg := out.String(); !strings.Contains(msg, name) && !strings.Contains(msg, missing) && !strings.Contains(msg, "-"+flag) {
				t.Errorf("pushgate refused %s=%s without naming the variable, the flag or the file:\n%s", name, missing, tail(msg))
			}
		})
	}
}

// tail is the end of a process's output, for a failure message.
func tail(s string) string {
	if len(s) > 2000 {
		return "..." + s[len(s)-2000:]
	}
	return s
}
