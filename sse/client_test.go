package sse

import (
	"strings"
	"testing"
)

func TestClassicScript(t *testing.T) {
	module := []byte("const A = 1;\nexport function watch() {}\nexport async function verdict() {}\nexport class GatewayError extends Error {}\n")
	out, err := classicScript(module, "pushgate")
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if strings.Contains(s, "export ") || !strings.Contains(s, "window.pushgate = Object.freeze({ watch, verdict, GatewayError });") ||
		!strings.HasPrefix(strings.SplitN(s, "\n", 2)[1], "(function () {\n'use strict';\nconst A = 1;") {
		t.Fatalf("classic build:\n%s", s)
	}
	for _, bad := range []string{"import { x } from './x.js';\n", "export { a };\n", "export default function () {}\n", "const u = import.meta.url;\n"} {
		if _, err := classicScript([]byte(bad+"export function ok() {}\n"), "pushgate"); err == nil {
			t.Errorf("%q: want an error, a classic script cannot do that", bad)
		}
	}
	if _, err := classicScript([]byte("function f() {}\n"), "pushgate"); err == nil {
		t.Error("a module without exports: want an error")
	}
}
