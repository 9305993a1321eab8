package sse

import (
	"slices"

	"github.com/gorilla/mux"
)

// Routes lists the routes h serves, as "METHOD /path/template" (for
// example "GET /v1/sessions/{interviewId}"), sorted. Which routes exist
// depends on the Config: the webhooks', /metrics and the page's. CORS
// preflight requests are answered before routing, on any path, and are
// not listed. A route that takes any method is listed as "* /path".
func (h *Handler) Routes() []string {
	var routes []string
	_ = h.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := route.GetPathTemplate()
		if err != nil {
			return nil
		}
		methods, err := route.GetMethods()
		if err != nil {
			methods = []string{"*"} // no method matcher: the route takes any method
		}
		for _, m := range methods {
			routes = append(routes, m+" "+path)
		}
		return nil
	})
	slices.Sort(routes)
	return slices.Compact(routes)
}
