package sse

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// anyOrigin, as the one flow origin, frames any page and grants it the
// iframe's device features, as the upstream's own iframe sample does.
const anyOrigin = "*"

// originHost is what an origin's host may be: a name or an address, and
// a port. Nothing else reaches the CSP and Permissions-Policy headers it
// is written into (a ';' or ',' there would start another directive).
var originHost = regexp.MustCompile(`^([A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$`)

// framesAny reports whether origins (normalized by normalFlowOrigins) is
// anyOrigin.
func framesAny(origins []string) bool {
	return len(origins) == 1 && origins[0] == anyOrigin
}

// normalFlowOrigins checks Config.FlowOrigins and returns them as browsers
// serialize them (see serializedOrigin), each once, in the order given:
// either origins like https://host[:port], or anyOrigin alone.
func normalFlowOrigins(list []string) ([]string, error) {
	if len(list) == 0 {
		return nil, fmt.Errorf("sse: FlowOrigins is required: the origins of the onboarding flow pages, or %q", anyOrigin)
	}
	out := make([]string, 0, len(list))
	for _, o := range list {
		if o == anyOrigin {
			if len(list) > 1 {
				return nil, fmt.Errorf("sse: flow origins %q mix %q (any origin) with origins: %q stands alone", strings.Join(list, ","), anyOrigin, anyOrigin)
			}
			return []string{anyOrigin}, nil
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !originHost.MatchString(u.Host) || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
			return nil, fmt.Errorf("sse: flow origin %q is not an origin like https://host[:port], nor %q alone", o, anyOrigin)
		}
		if s := serializedOrigin(u); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// flowURLOrigin is the origin of an onboarding URL as normalFlowOrigins
// writes the configured ones, and false when the URL has none.
func flowURLOrigin(flowURL string) (string, bool) {
	u, err := url.Parse(flowURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", false
	}
	return serializedOrigin(u), true
}
