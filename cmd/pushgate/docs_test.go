package main

// The commands the README and docs/ give a newcomer: the README's curl
// walk-through run as pasted, and every other shell block checked against
// the commands it names (each flag exists, each test it runs exists and
// runs as written).

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/testenv"
)

// repoRoot is where the docs' commands run from.
const repoRoot = "../.."

// shellBlock is a fenced sh (or bash, shell) block of a Markdown file.
type shellBlock struct {
	where string // file:line of its first line
	text  string
}

// shellBlocks reads the shell blocks of the Markdown files given.
func shellBlocks(t *testing.T, files ...string) []shellBlock {
	t.Helper()
	var blocks []shellBlock
	for _, file := range files {
		data, err := os.ReadFile(filepath.Join(repoRoot, file))
		if err != nil {
			t.Fatal(err)
		}
		var cur *shellBlock
		for i, line := range strings.Split(string(data), "\n") {
			switch {
			case cur == nil && (line == "```sh" || line == "```bash" || line == "```shell"):
				cur = &shellBlock{where: fmt.Sprintf("%s:%d", file, i+2)}
			case cur != nil && strings.HasPrefix(line, "```"):
				blocks = append(blocks, *cur)
				cur = nil
			case cur != nil:
				cur.text += line + "\n"
			}
		}
	}
	return blocks
}

// TestREADMECurlBlockRunsAsPasted pastes the README's curl walk-through
// whole into bash, with only its two ports changed, from the top of a
// checkout: it must print ONBOARDING_FINISHED from the stream and the
// simulator's per-interview count. The block starts pushgate with go run
// and waits for /healthz itself, as a reader's shell would.
func TestREADMECurlBlockRunsAsPasted(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles pushgate with go run: not with -short")
	}
	t.Parallel() // go run, then a flow that waits on nothing
	testenv.Program(t, "curl", "the README's curl walk-through")
	var block string
	for _, b := range shellBlocks(t, "README.md") {
		if strings.Contains(b.text, "/sim/interviews/") {
			block = b.text
		}
	}
	if block == "" {
		t.Fatal("README.md has no curl block driving the simulator")
	}
	for _, port := range []string{"127.0.0.1:18080", "127.0.0.1:18090"} {
		if !strings.Contains(block, port) {
			t.Fatalf("the README's curl block no longer uses %s: update this test with it", port)
		}
	}
	block = strings.NewReplacer("127.0.0.1:18080", testenv.FreeAddr(t), "127.0.0.1:18090", testenv.FreeAddr(t)).Replace(block)

	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	sh := exec.Command("bash", "-c", block)
	sh.Dir, sh.Stdout, sh.Stderr = repoRoot, out, out // a file, not a pipe: the block leaves pushgate running
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-sh.Process.Pid, syscall.SIGTERM) // the block's group: go run, pushgate, the curls
		_ = sh.Wait()
	})
	want := []string{`"onboardingStatus":"ONBOARDING_FINISHED"`, `"status_by_interview":`}
	deadline := time.Now().Add(3 * time.Minute) // go run compiles first
	for {
		printed, _ := os.ReadFile(out.Name())
		missing := ""
		for _, w := range want {
			if !strings.Contains(string(printed), w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the README's curl block did not print %s within 3 minutes; it printed:\n%s", missing, printed)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// docFiles are the Markdown files whose shell blocks TestDocsCommands
// checks.
func docFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md"}
	docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	examples, _ := filepath.Glob(filepath.Join(repoRoot, "examples", "*", "README.md"))
	for _, f := range append(docs, examples...) {
		rel, _ := filepath.Rel(repoRoot, f)
		files = append(files, rel)
	}
	return files
}

// binaryNames are the names the docs give pushgate's commands: their own,
// and the paths the benchmark recipes build them to.
var binaryNames = map[string]string{
	"pushgate": "pushgate", "pushgate-sim": "pushgate-sim", "pushgate-load": "pushgate-load",
	"pg": "pushgate", "pg-old": "pushgate", "pg-new": "pushgate",
	"pgload": "pushgate-load", "load-old": "pushgate-load", "$L": "pushgate-load",
}

// TestDocsCommands reads every shell block of the README, docs/ and the
// examples' READMEs. Each command of pushgate, pushgate-sim, pushgate-load
// or the existing-app example that a block runs (by go run, or by name) must name only
// flags that command has, and each go test -run must select tests of the
// package it names, with PUSHGATE_LONG_TESTS=1 when one of them is long:
// a pasted command never fails on a flag or silently skips.
func TestDocsCommands(t *testing.T) {
	t.Parallel() // go build and -h

	flags := map[string]map[string]bool{ // command -> flag -> is boolean
		"pushgate": commandFlags(func(fs *flag.FlagSet) { new(config).define(fs) }),
	}
	bin := buildCommands(t)
	flags["pushgate-sim"] = helpFlags(t, filepath.Join(bin, "pushgate-sim"))
	flags["pushgate-load"] = helpFlags(t, buildCommand(t, "./cmd/pushgate-load"))
	flags["existing-app"] = helpFlags(t, buildCommand(t, "./examples/existing-app"))
	checked := 0
	for _, b := range shellBlocks(t, docFiles(t)...) {
		for _, cmd := range shellCommands(b.text) {
			env, args := splitEnv(cmd)
			if len(args) == 0 {
				continue
			}
			var name string
			switch {
			case len(args) > 2 && args[0] == "go" && args[1] == "run":
				name, args = filepath.Base(args[2]), args[3:]
			case len(args) > 1 && args[0] == "go" && args[1] == "test":
				if err := checkGoTest(env, args[2:]); err != nil {
					t.Errorf("%s: %s: %v", b.where, strings.Join(cmd, " "), err)
				}
				checked++
				continue
			default:
				name, args = binaryNames[filepath.Base(args[0])], args[1:]
			}
			known, ok := flags[name]
			if !ok {
				continue
			}
			if err := checkFlags(known, args); err != nil {
				t.Errorf("%s: %s: %v", b.where, name, err)
			}
			checked++
		}
	}
	if checked < 30 {
		t.Fatalf("checked %d commands in the docs, want the 30 or more they hold: is the parser still right?", checked)
	}
	t.Logf("%d commands checked", checked)
}

// commandFlags lists the flags define declares, and which are boolean.
func commandFlags(define func(*flag.FlagSet)) map[string]bool {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	define(fs)
	flags := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) {
		b, ok := f.Value.(interface{ IsBoolFlag() bool })
		flags[f.Name] = ok && b.IsBoolFlag()
	})
	return flags
}

// buildCommand builds a command of this module into a temporary
// directory and returns its path.
func buildCommand(t *testing.T, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	build := exec.Command("go", "build", "-o", bin, pkg)
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// helpFlags reads the flags a command's -h lists, in the flag package's
// format: "  -name type" for a flag that takes a value, "  -name" for a
// boolean.
func helpFlags(t *testing.T, bin string) map[string]bool {
	t.Helper()
	out, _ := exec.Command(bin, "-h").CombinedOutput() // -h exits 0 or 2
	flags := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "  -") {
			continue
		}
		fields := strings.Fields(line)
		flags[strings.TrimPrefix(fields[0], "-")] = len(fields) == 1
	}
	if len(flags) < 5 {
		t.Fatalf("%s -h lists %d flags:\n%s", bin, len(flags), out)
	}
	return flags
}

// checkFlags checks args against a command's flags: each -name (or
// --name, -name=value) must be one, and a flag that takes a value takes
// the next word unless it has =value.
func checkFlags(known map[string]bool, args []string) error {
	var errs []error
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "..." || !strings.HasPrefix(arg, "-") || arg == "-" || arg == "--" {
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		isBool, ok := known[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("no flag -%s", name))
		case !isBool && !hasValue:
			i++ // its value
		}
	}
	return errors.Join(errs...)
}

// checkGoTest checks a go test command's -run: it must select tests of
// the packages named, and a long one only with PUSHGATE_LONG_TESTS=1.
func checkGoTest(env map[string]string, args []string) error {
	var pattern string
	var pkgs []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-run" && i+1 < len(args):
			pattern = args[i+1]
			i++
		case strings.HasPrefix(a, "-run="):
			pattern = strings.TrimPrefix(a, "-run=")
		case strings.HasPrefix(a, "./") && !strings.HasSuffix(a, "..."):
			pkgs = append(pkgs, a)
		}
	}
	if pattern == "" || pattern == "^$" || len(pkgs) == 0 {
		return nil
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return fmt.Errorf("-run %q: %v", pattern, err)
	}
	matched := 0
	for _, pkg := range pkgs {
		tests, err := packageTests(filepath.Join(repoRoot, pkg))
		if err != nil {
			return err
		}
		for name, long := range tests {
			if !re.MatchString(name) {
				continue
			}
			matched++
			if long && env[testenv.LongVar] != "1" {
				return fmt.Errorf("%s is a long test: it skips without %s=1", name, testenv.LongVar)
			}
		}
	}
	if matched == 0 {
		return fmt.Errorf("-run %q selects no test of %v", pattern, pkgs)
	}
	return nil
}

// testFunc finds the tests, benchmarks and fuzz tests of a _test.go file.
var testFunc = regexp.MustCompile(`(?m)^func ((?:Test|Benchmark|Fuzz)\w*)\(`)

// packageTests lists the tests of the package in dir, each with whether it
// is long (it calls testenv.SkipUnlessLong before any other test starts).
func packageTests(dir string) (map[string]bool, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no tests in %s", dir)
	}
	tests := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		src := string(data)
		found := testFunc.FindAllStringSubmatchIndex(src, -1)
		for k, m := range found {
			end := len(src)
			if k+1 < len(found) {
				end = found[k+1][0]
			}
			tests[src[m[2]:m[3]]] = strings.Contains(src[m[1]:end], "testenv.SkipUnlessLong(")
		}
	}
	return tests, nil
}

// splitEnv splits a command's leading NAME=value words from its arguments.
func splitEnv(cmd []string) (map[string]string, []string) {
	env := map[string]string{}
	for len(cmd) > 0 {
		name, value, ok := strings.Cut(cmd[0], "=")
		if !ok || name == "" || strings.ContainsAny(name, "-./$") {
			break
		}
		env[name] = value
		cmd = cmd[1:]
	}
	return env, cmd
}

// shellCommands splits a shell block into its simple commands' words: a
// backslash ends no line, # starts a comment, and ;, &, |, && and || end a
// command. Quotes group words (” and "", removed) and $(...) stays one
// word; that is all the docs' blocks need.
func shellCommands(text string) [][]string {
	var cmds [][]string
	var words []string
	var word strings.Builder
	inWord := false
	endWord := func() {
		if inWord {
			words = append(words, word.String())
		}
		word.Reset()
		inWord = false
	}
	endCmd := func() {
		endWord()
		if len(words) > 0 {
			cmds = append(cmds, words)
		}
		words = nil
	}
	r := []rune(strings.ReplaceAll(text, "\\\n", " "))
	for i := 0; i < len(r); i++ {
		c := r[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(r) && r[j] != c {
				j++
			}
			word.WriteString(string(r[i+1 : min(j, len(r))]))
			inWord, i = true, j
		case c == '$' && i+1 < len(r) && r[i+1] == '(':
			depth, j := 0, i+1
			for ; j < len(r); j++ {
				if r[j] == '(' {
					depth++
				} else if r[j] == ')' {
					if depth--; depth == 0 {
						break
					}
				}
			}
			word.WriteString(string(r[i:min(j+1, len(r))]))
			inWord, i = true, j
		case c == '#' && !inWord:
			for i < len(r) && r[i] != '\n' {
				i++
			}
			endCmd()
		case c == '\n' || c == ';' || c == '&' || c == '|':
			endCmd()
		case c == ' ' || c == '\t':
			endWord()
		default:
			word.WriteRune(c)
			inWord = true
		}
	}
	endCmd()
	return cmds
}

// TestBannerNamesTheWayIn: with the built-in simulator, the banner sends a
// newcomer to the demo page; with -public-sessions=false, where the page
// cannot start a session, to the server API instead.
func TestBannerNamesTheWayIn(t *testing.T) {
	bin := filepath.Join(buildCommands(t), "pushgate")
	for _, tc := range []struct {
		args      []string
		want, not string
	}{
		{nil, "Open http://", "/v1/sessions"},
		{[]string{"-public-sessions=false", "-api-token", "a-token-of-the-integrators-backend"}, "POST http://", "Open "},
	} {
		addr := testenv.FreeAddr(t)
		p := startProcess(t, bin, "http://"+addr+"/healthz", append([]string{"-addr", addr, "-sim-addr", testenv.FreeAddr(t)}, tc.args...)...)
		logs := p.logs.String()
		if !strings.Contains(logs, tc.want) || strings.Contains(logs, tc.not) {
			t.Errorf("pushgate %v printed:\n%s\nwant %q and no %q", tc.args, logs, tc.want, tc.not)
		}
	}
}
