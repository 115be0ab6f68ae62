// Package miniotest runs a real MinIO server for tests: the pinned build (installed by
// scripts/minio.sh when missing) on a free loopback port with a temporary data directory,
// stopped when the test ends.
//
//	srv := miniotest.Start(t)
//	st, _ := storage.OpenS3(ctx, storage.S3Config{Endpoint: srv.Endpoint, Bucket: "b",
//		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
package miniotest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a running MinIO.
type Server struct {
	Endpoint  string // host:port
	AccessKey string
	SecretKey string
	Dir       string // its data directory

	bin string
	cmd *exec.Cmd
	out *bytes.Buffer
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary installs MinIO when missing and returns its path.
func Binary() (string, error) {
	binOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "minio.sh")
		out, err := exec.Command("bash", script, "install").Output()
		if err != nil {
			binErr = fmt.Errorf("install MinIO with %s: %w", script, err)
			return
		}
		binPath = strings.TrimSpace(string(out))
	})
	return binPath, binErr
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Start runs a fresh MinIO for the test and stops it when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin, err := Binary()
	if err != nil {
		tb.Fatal(err)
	}
	secret := make([]byte, 12)
	rand.Read(secret)
	s := &Server{AccessKey: "dangantest", SecretKey: hex.EncodeToString(secret), Dir: tb.TempDir(), bin: bin}
	if err := s.start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	return s
}

func (s *Server) start() error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	console, err := freeAddr()
	if err != nil {
		return err
	}
	if s.Endpoint != "" {
		addr = s.Endpoint // a restart keeps the address
	}
	s.out = &bytes.Buffer{}
	s.cmd = exec.Command(s.bin, "server", s.Dir, "--address", addr, "--console-address", console, "--quiet")
	s.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+s.AccessKey, "MINIO_ROOT_PASSWORD="+s.SecretKey, "MINIO_BROWSER=off")
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start MinIO: %w", err)
	}
	s.Endpoint = addr
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.Stop()
	return fmt.Errorf("MinIO did not become ready on %s:\n%s", addr, s.out.String())
}

// Stop kills the server (it may be started again with Restart).
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

// Restart starts a stopped server again on the same address and data.
func (s *Server) Restart() error { return s.start() }
