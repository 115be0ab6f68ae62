package testenv

import (
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sync"
	"testing"
)

// TokenPattern is what an API token looks like: "dg_" and 32 bytes of base64url.
var TokenPattern = regexp.MustCompile(`dg_[A-Za-z0-9_-]{43}`)

var sink = &tokenScan{}

type tokenScan struct {
	mu    sync.Mutex
	found []string
}

func (s *tokenScan) Write(p []byte) (int, error) {
	if m := TokenPattern.Find(p); m != nil {
		s.mu.Lock()
		s.found = append(s.found, string(p))
		s.mu.Unlock()
	}
	return len(p), nil
}

// Logger is a logger for tests at debug level whose every line is checked for tokens by
// RunCheckingLogs.
func Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(sink, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// RunCheckingLogs runs the tests and fails the run when any line logged through Logger
// holds a token: tokens never reach the logs.
func RunCheckingLogs(m *testing.M) {
	code := m.Run()
	sink.mu.Lock()
	for _, line := range sink.found {
		m := TokenPattern.FindString(line)
		fmt.Fprintf(os.Stderr, "FAIL: a token (%s…) was logged: %s", m[:8], TokenPattern.ReplaceAllString(line, "dg_…"))
		code = 1
	}
	sink.mu.Unlock()
	os.Exit(code)
}
