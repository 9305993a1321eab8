//go:build !unix

package redistest

// Pause would freeze the server; without SIGSTOP it skips the test.
func (s *Server) Pause() { s.t.Skip("redistest: pausing a server needs SIGSTOP") }

// Resume does nothing where Pause skips.
func (s *Server) Resume() {}
