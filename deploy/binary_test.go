package deploy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// binDir holds the pushgate binary the tests build, for the whole run.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pushgate-deploy-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// pushgateBinary builds ../cmd/pushgate once per run, from the repository
// root (the gateway's own module).
func pushgateBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := filepath.Abs("..")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(binDir, "pushgate")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/pushgate")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/pushgate: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// flagSet is what `pushgate -h` says the binary takes: each flag, and the
// environment variables that set it.
type flagSet struct {
	flags map[string]bool   // flag name, without its dash
	env   map[string]string // environment variable -> flag name
	help  string
}

var (
	helpOnce sync.Once
	help     flagSet
	helpErr  error
)

// helpLine is a flag's line in `pushgate -h`: "  -name [PUSHGATE_NAME]",
// where the brackets may list more than one variable.
var helpLine = regexp.MustCompile(`(?m)^  -([a-z0-9][a-z0-9-]*)(?: [^\[\n]*)?\s\[([^\]]+)\]`)

// pushgateFlags runs `pushgate -h` once and parses it.
func pushgateFlags(t *testing.T) flagSet {
	t.Helper()
	bin := pushgateBinary(t)
	helpOnce.Do(func() {
		var out bytes.Buffer
		cmd := exec.Command(bin, "-h")
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			helpErr = fmt.Errorf("pushgate -h: %v\n%s", err, out.String())
			return
		}
		help = flagSet{flags: map[string]bool{}, env: map[string]string{}, help: out.String()}
		for _, m := range helpLine.FindAllStringSubmatch(help.help, -1) {
			help.flags[m[1]] = true
			for _, v := range regexp.MustCompile(`PUSHGATE_[A-Z0-9_]+`).FindAllString(m[2], -1) {
				help.env[v] = m[1]
			}
		}
		if len(help.flags) < 20 || !help.flags["addr"] || help.env["PUSHGATE_ADDR"] != "addr" {
			helpErr = fmt.Errorf("pushgate -h: found %d flags, not the list of flags this test reads:\n%s", len(help.flags), help.help)
		}
	})
	if helpErr != nil {
		t.Fatal(helpErr)
	}
	return help
}

// flagOfEnv is the flag an environment variable sets, and whether it names
// a file the flag's value is read from (PUSHGATE_<NAME>_FILE).
func (fs flagSet) flagOfEnv(name string) (flag string, file, ok bool) {
	if f, ok := fs.env[name]; ok {
		return f, name != envName(f), true
	}
	if base, cut := strings.CutSuffix(name, "_FILE"); cut {
		if f, ok := fs.env[base]; ok {
			return f, true, true
		}
	}
	return "", false, false
}

// envName is a flag's own environment variable, as pushgate names it.
func envName(flag string) string {
	return "PUSHGATE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

func TestHelpListsTheFlagsTheChartNames(t *testing.T) {
	fs := pushgateFlags(t)
	// Flags the chart's templates and checks name by hand.
	named := append([]string{"addr", "metrics-addr", "upstream", "redis-url", "relay-dir", "drain-delay", "shutdown-grace", "tls-cert", "tls-key", "max-streams", "sim-addr", "sim-public-url"}, everySecret...)
	for _, f := range named {
		if !fs.flags[f] {
			t.Errorf("the chart names -%s, which `pushgate -h` does not list", f)
		}
	}
}

// TestChartKnowsEverySecretFlag checks the chart's list of secret flags
// (everySecret here, pushgate.secretFlags in the chart, which the "every
// secret" scenario renders) against the list `pushgate -h` gives of the
// flags it reads from files.
func TestChartKnowsEverySecretFlag(t *testing.T) {
	fs := pushgateFlags(t)
	m := regexp.MustCompile(`(?s)Secret flags \(([^)]*)\)`).FindStringSubmatch(fs.help)
	if m == nil {
		t.Fatalf("pushgate -h names no secret flags (\"Secret flags (-secret, ...)\"):\n%s", fs.help)
	}
	var binary []string
	for _, f := range strings.Split(m[1], ",") {
		binary = append(binary, strings.TrimPrefix(strings.TrimSpace(f), "-"))
	}
	slices.Sort(binary)
	chart := slices.Sorted(slices.Values(everySecret))
	if !slices.Equal(binary, chart) {
		t.Errorf("pushgate reads %v from files, the chart knows %v: update pushgate.secretFlags in templates/_pushgate.tpl, everySecret here and the README's Secrets table", binary, chart)
	}
}
