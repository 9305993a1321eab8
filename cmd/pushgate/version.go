package main

import (
	"cmp"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/pushgate/pushgate/cmd/pushgate/gateway"
)

// version and revision name the build when set at link time (the image
// sets them from its build arguments: -ldflags "-X main.version=v1.4.0
// -X main.revision=<commit>"); empty, they come from the build info Go
// records: the module version (go install ...@v1.4.0) and the VCS
// revision of the tree built (go build in a checkout).
var version, revision string

// build names this build.
func build() gateway.Build {
	b := gateway.Build{Version: version, Revision: revision, GoVersion: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if b.Version == "" {
		b.Version = info.Main.Version
	}
	if b.Revision == "" {
		b.Revision = vcsRevision(info)
	}
	return b
}

// vcsRevision is the VCS revision the build info records, with "-dirty"
// when the tree had changes; "" when it records none (a module build, or
// -buildvcs=false).
func vcsRevision(info *debug.BuildInfo) string {
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev != "" && modified == "true" {
		rev += "-dirty"
	}
	return rev
}

// versionLine is what pushgate -version prints.
func versionLine(b gateway.Build) string {
	return fmt.Sprintf("pushgate %s (revision %s, %s, %s/%s)", cmp.Or(b.Version, "unknown"), cmp.Or(b.Revision, "unknown"), b.GoVersion, runtime.GOOS, runtime.GOARCH)
}
