//go:build unix

package redistest

import "syscall"

// Pause freezes the server (SIGSTOP): it keeps its port and takes
// connections, but answers nothing, as a Redis that hangs. Resume, Stop or
// the end of the test thaws it.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume thaws a paused server (SIGCONT); it answers what it was sent
// meanwhile.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		s.t.Fatal("redistest: the server is stopped")
	}
	if err := s.proc.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redistest: %v: %v", sig, err)
	}
}
