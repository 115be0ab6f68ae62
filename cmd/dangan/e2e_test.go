package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/internal/testenv"
	"github.com/dangan-archive/dangan/signing"
	"github.com/dangan-archive/dangan/storage"
	"github.com/dangan-archive/dangan/storage/index"
	"github.com/dangan-archive/dangan/storage/miniotest"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dangan-e2e-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "dangan")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build dangan: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	// No token in any line any server logged in the whole run.
	startedMu.Lock()
	for _, s := range started {
		if tok := tokenPattern.Find(s.out.Bytes()); tok != nil {
			fmt.Fprintf(os.Stderr, "FAIL: the server on %s logged a token (%s…)\n", s.Data, tok[:8])
			code = 1
		}
	}
	startedMu.Unlock()
	os.Exit(code)
}

// tokenPattern is what an API token looks like: "dg_" and 32 bytes of base64url.
var tokenPattern = regexp.MustCompile(`dg_[A-Za-z0-9_-]{43}`)

func get(t *testing.T, url, tok string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func smallFiles(t *testing.T) (map[string][]byte, []string) {
	t.Helper()
	files := map[string][]byte{}
	order := []string{"application-form.json", "scan-application.jpg", "decision.pdf"}
	for _, f := range order {
		b, err := os.ReadFile(filepath.Join("../../examples/case-001", f))
		if err != nil {
			t.Fatal(err)
		}
		files[f] = b
	}
	return files, order
}

// TestAcknowledgedIngestsSurviveKill9 kills the server mid-ingest and checks that every
// acknowledged package is there after a restart, that no index entry points at a missing
// object, and that item numbers become continuous again.
func TestAcknowledgedIngestsSurviveKill9(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	srv, err := startServer(binary, data, "--converters", "off") // crash safety of storage; conversions are tested in formats/ and archive/
	if err != nil {
		t.Fatal(err)
	}
	tok, err := srv.Token(archive.RoleDepartment, BenchUSCC)
	if err != nil {
		t.Fatal(err)
	}
	acked := map[string]string{} // case number → package id
	stop := make(chan struct{})
	wait, count := ingestUntilKilled(t, srv.URL, tok, "CRASH", acked, stop)
	waitFor(t, func() bool { return count() >= 20 }) // however slow the machine
	srv.Kill()                                       // SIGKILL while ingests are in flight
	close(stop)
	wait()

	srv, err = startServer(binary, data, "--converters", "off")
	if err != nil {
		t.Fatal(err)
	}
	for caseNo, id := range acked {
		if status, body := get(t, srv.URL+"/api/v1/packages/"+id, tok); status != 200 {
			t.Fatalf("acknowledged %s (%s) lost after kill -9: %d %s", caseNo, id, status, body)
		}
	}
	// Fill the gaps left by interrupted ingests, then stop and inspect the index offline.
	gaps := func() []int {
		a, err := archive.Open(archive.Config{DataDir: data, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		var nums []int
		err = a.Index().ForEachPackage(func(p *index.Package) error {
			nums = append(nums, p.ItemNo)
			if _, err := a.Store().Stat(context.Background(), p.Key); err != nil {
				t.Errorf("index entry %s points at a missing object %s: %v", p.ID, p.Key, err)
			}
			// Its ingest event is in the log, durable in storage.
			if i, err := a.Log().Find(eventlog.TypeIngest, p.ID); err != nil || i != p.LogIndex {
				t.Errorf("index entry %s: ingest event %d, log has %d (%v)", p.ID, p.LogIndex, i, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		sort.Ints(nums)
		var missing []int
		for i, n := 0, 1; i < len(nums); n++ {
			if nums[i] == n {
				i++
			} else {
				missing = append(missing, n)
			}
		}
		return missing
	}
	postCases(t, srv.URL, tok, "AFTER", 20)
	srv.Kill()
	if g := gaps(); len(g) > 0 {
		t.Fatalf("item numbers have gaps after restart and 20 more ingests: %v", g)
	}
}

// TestLargeCaseInBoundedMemory ingests one 512 MiB PDF and reads it back; the server's
// peak RSS must stay under 150 MiB.
func TestLargeCaseInBoundedMemory(t *testing.T) {
	dir := t.TempDir()
	srv, err := startServer(binary, filepath.Join(dir, "data"), "--converters", "off")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Kill()
	tok, _ := srv.Token(archive.RoleDepartment, BenchUSCC)
	caseDir := filepath.Join(dir, "large")
	os.MkdirAll(caseDir, 0o755)
	f, _ := os.Create(filepath.Join(caseDir, "large.pdf"))
	h := sm3.New()
	if err := samplePDF(io.MultiWriter(f, h), 512<<20); err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	f.Close()
	want := hex.EncodeToString(h.Sum(nil))
	meta, _ := json.Marshal(benchCase("LARGE-1", []string{"large.pdf"}))
	os.WriteFile(filepath.Join(caseDir, "case.json"), meta, 0o644)
	start := time.Now()
	status, body, err := postCase(&http.Client{}, srv.URL, tok, caseDir, nil)
	if err != nil || status != 201 {
		t.Fatalf("large ingest: %d %v %s", status, err, body)
	}
	t.Logf("512 MiB ingested in %.1fs", time.Since(start).Seconds())
	var p struct {
		ID        string
		Documents []struct{ Encodings []struct{ SM3 string } }
	}
	json.Unmarshal(body, &p)
	if got := p.Documents[0].Encodings[0].SM3; got != want {
		t.Fatalf("recorded SM3 %s, file SM3 %s", got, want)
	}
	// Read the document back (a ranged read and a streaming base64 decode).
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/packages/"+p.ID+"/documents/1", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rh := sm3.New()
	n, _ := io.Copy(rh, resp.Body)
	resp.Body.Close()
	if hex.EncodeToString(rh.Sum(nil)) != want || n != st.Size() {
		t.Fatalf("document read back: %d bytes, SM3 %x", n, rh.Sum(nil))
	}
	rss, err := srv.PeakRSS()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("server peak RSS %d MiB", rss>>20)
	if rss > 150<<20 {
		t.Fatalf("server peak RSS %d MiB > 150 MiB for a 512 MiB case", rss>>20)
	}
}

// TestCLIWalkThrough runs the README's walk-through with the binary: ingest the example
// case, fetch the EEP, evidence and trust roots, and verify offline; a flipped byte fails.
func TestCLIWalkThrough(t *testing.T) {
	dir := t.TempDir()
	srv, err := startServer(binary, filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Kill()
	tok, _ := srv.Token(archive.RoleDepartment, "11610830MB1234567W")
	out, err := exec.Command(binary, "ingest", "../../examples/case-001", "--server", srv.URL, "--token", tok).Output()
	if err != nil {
		t.Fatalf("dangan ingest: %v %s", err, out)
	}
	var p struct{ ID string }
	json.Unmarshal(out, &p)
	for name, path := range map[string]string{"p.eep": "/api/v1/packages/" + p.ID + "/eep", "p.evidence": "/api/v1/packages/" + p.ID + "/evidence", "trust.pem": "/api/v1/trust"} {
		status, b := get(t, srv.URL+path, tok)
		if status != 200 {
			t.Fatalf("GET %s: %d", path, status)
		}
		os.WriteFile(filepath.Join(dir, name), b, 0o644)
	}
	// From here on no server runs: the check is offline.
	srv.Kill()
	verify := func(file string, extra ...string) (int, string) {
		cmd := exec.Command(binary, append([]string{"verify", file, "--roots", filepath.Join(dir, "trust.pem"), "--evidence", filepath.Join(dir, "p.evidence")}, extra...)...)
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := verify(filepath.Join(dir, "p.eep")); code != 0 || !strings.Contains(out, "VALID") {
		t.Fatalf("dangan verify: exit %d\n%s", code, out)
	}
	code, js := verify(filepath.Join(dir, "p.eep"), "--json")
	var rep archive.Report
	if code != 0 || json.Unmarshal([]byte(js), &rep) != nil || !rep.Valid || len(rep.Findings) < 8 {
		t.Fatalf("--json: exit %d\n%s", code, js)
	}
	eepBytes, _ := os.ReadFile(filepath.Join(dir, "p.eep"))
	i := bytes.Index(eepBytes, []byte("<编码数据 ")) + 200
	eepBytes[i] ^= 0x01
	os.WriteFile(filepath.Join(dir, "bad.eep"), eepBytes, 0o644)
	if code, out := verify(filepath.Join(dir, "bad.eep")); code != 1 || !strings.Contains(out, "FAIL GD-1-1") || !strings.Contains(out, "FAIL GD-1-14") {
		t.Fatalf("flipped byte: exit %d\n%s", code, out)
	}
	if code, out := verify(filepath.Join(dir, "p.eep")); code != 0 || !strings.Contains(out, "ok   inclusion 0") {
		t.Fatalf("the report should list the proof's checks: exit %d\n%s", code, out)
	}
	if code, _ := verify(filepath.Join(dir, "missing.eep")); code != 2 {
		t.Fatalf("missing file: exit %d, want 2", code)
	}
}

// TestFirstStartAndOfflineTokens: the first start writes an admin token (0600) and says so;
// init on an existing archive changes nothing; token create works while the server is
// stopped and refuses bad roles.
func TestFirstStartAndOfflineTokens(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	srv, err := startServer(binary, data)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(data, "admin-token"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("admin-token: %v mode %v", err, st.Mode().Perm())
	}
	if !strings.Contains(srv.out.String(), "admin_token_file=") {
		t.Fatalf("the first start does not say where the admin token is:\n%s", srv.out.String())
	}
	first := srv.Admin
	srv.Kill()

	out, err := exec.Command(binary, "init", "--data", data).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "nothing changed") {
		t.Fatalf("init on an existing archive: %v %s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(data, "admin-token")); strings.TrimSpace(string(b)) != first {
		t.Fatal("init replaced the admin token")
	}
	tok, err := exec.Command(binary, "token", "create", "--data", data, "--role", "department", "--org", BenchUSCC).Output()
	if err != nil || !strings.HasPrefix(string(tok), "dg_") {
		t.Fatalf("token create: %v %s", err, tok)
	}
	if out, err := exec.Command(binary, "token", "create", "--data", data, "--role", "superuser").CombinedOutput(); err == nil {
		t.Fatalf("token create accepted an unknown role: %s", out)
	}
	// The token made offline works once the server is back.
	srv, err = startServer(binary, data)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Kill()
	if status, body := get(t, srv.URL+"/api/v1/packages", strings.TrimSpace(string(tok))); status != 200 {
		t.Fatalf("offline token rejected: %d %s", status, body)
	}
	// A fresh directory with init: the admin token appears without a server.
	fresh := filepath.Join(t.TempDir(), "fresh")
	if out, err := exec.Command(binary, "init", "--data", fresh).CombinedOutput(); err != nil || !strings.Contains(string(out), "admin token") {
		t.Fatalf("init: %v %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(fresh, "pki", "root.pem")); err != nil {
		t.Fatal("init made no PKI")
	}
}

// postCases ingests n small cases numbered prefix-0 … prefix-(n-1); each must be created.
func postCases(t *testing.T, url, tok, prefix string, n int) {
	t.Helper()
	files, order := smallFiles(t)
	for i := 0; i < n; i++ {
		caseNo := fmt.Sprintf("%s-%d", prefix, i)
		status, body, err := postMultipart(http.DefaultClient, url, tok, benchCase(caseNo, order), files, order)
		if err != nil || status != http.StatusCreated {
			t.Fatalf("ingest %s: %d %s %v", caseNo, status, body, err)
		}
	}
}

// ingestUntilKilled runs six clients posting small cases numbered prefix-client-n to url
// until stop is closed or the server goes away, recording every acknowledged case (200 or
// 201) in acked. Call the returned wait after killing the server.
//
// count is the number of acknowledged ingests so far, for a test that waits for them.
func ingestUntilKilled(t *testing.T, url, tok, prefix string, acked map[string]string, stop chan struct{}) (wait func(), count func() int) {
	t.Helper()
	files, order := smallFiles(t)
	var mu sync.Mutex
	count = func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	var wg sync.WaitGroup
	for c := 0; c < 6; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				caseNo := fmt.Sprintf("%s-%d-%04d", prefix, c, i)
				status, body, err := postMultipart(http.DefaultClient, url, tok, benchCase(caseNo, order), files, order)
				if err != nil {
					return // the server is gone
				}
				if status == http.StatusCreated || status == http.StatusOK {
					var p struct{ ID string }
					json.Unmarshal(body, &p)
					mu.Lock()
					acked[caseNo] = p.ID
					mu.Unlock()
				}
			}
		}(c)
	}
	return wg.Wait, count
}

// TestKillCyclesOnMinIO: clients ingest while the server is killed with SIGKILL at random
// moments, 20 times; afterwards every acknowledged case is there and verifies, no index
// entry lacks its object, and the orphans were reconciled.
func TestKillCyclesOnMinIO(t *testing.T) {
	minio := miniotest.Start(t)
	t.Setenv("DANGAN_S3_ACCESS_KEY", minio.AccessKey)
	t.Setenv("DANGAN_S3_SECRET_KEY", minio.SecretKey)
	s3flags := []string{"--s3-endpoint", minio.Endpoint, "--s3-bucket", "dangan-crash"}
	data := filepath.Join(t.TempDir(), "data")
	acked := map[string]string{}
	var tok string
	rng := mrand.New(mrand.NewPCG(uint64(time.Now().UnixNano()), 9))
	for cycle := 0; cycle < 20; cycle++ {
		srv, err := startServer(binary, data, append([]string{"--converters", "off"}, s3flags...)...)
		if err != nil {
			t.Fatalf("cycle %d: %v", cycle, err)
		}
		if tok == "" {
			if tok, err = srv.Token(archive.RoleDepartment, BenchUSCC); err != nil {
				t.Fatal(err)
			}
		}
		stop := make(chan struct{})
		wait, count := ingestUntilKilled(t, srv.URL, tok, fmt.Sprintf("KILL-%02d", cycle), acked, stop)
		// Killed after a random number of acknowledgements, with six ingests in flight: the
		// moment is random in the work done, not in wall time, so a busy machine changes
		// nothing but the test's duration.
		target := count() + 25 + rng.IntN(10)
		waitFor(t, func() bool { return count() >= target })
		srv.Kill()
		close(stop)
		wait()
	}
	srv, err := startServer(binary, data, append([]string{"--converters", "off"}, s3flags...)...)
	if err != nil {
		t.Fatal(err)
	}
	a, err := archive.Open(archive.Config{DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, roots := get(t, srv.URL+"/api/v1/trust", "")
	certs, _ := signing.ParseCertsPEM(roots)
	pool := signing.NewPool(certs...)
	for caseNo, id := range acked {
		status, file := get(t, srv.URL+"/api/v1/packages/"+id+"/eep", tok)
		if status != 200 {
			t.Fatalf("acknowledged %s (%s) lost: %d", caseNo, id, status)
		}
		_, evJSON := get(t, srv.URL+"/api/v1/packages/"+id+"/evidence", tok)
		ev, err := archive.LoadEvidence(evJSON)
		if err != nil {
			t.Fatalf("%s evidence: %v", id, err)
		}
		rep, err := archive.Verify(bytes.NewReader(file), int64(len(file)), archive.VerifyOptions{Roots: pool, Evidence: ev})
		if err != nil || !rep.Valid {
			t.Fatalf("acknowledged %s does not verify: %v %+v", id, err, rep)
		}
	}
	srv.Kill()
	// Offline, against the same bucket and index: nothing lost, nothing left to adopt.
	st, err := storage.OpenS3(context.Background(), storage.S3Config{Endpoint: minio.Endpoint, Bucket: "dangan-crash", AccessKey: minio.AccessKey, SecretKey: minio.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	off, err := archive.Open(archive.Config{DataDir: data, Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), SkipReconcile: true})
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	rep, err := off.Reconcile(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.DataLoss) > 0 || len(rep.Adopted) > 0 || len(rep.MovedAside) > 0 {
		t.Fatalf("after the last restart: %d lost, %d still to adopt, %d to move aside", len(rep.DataLoss), len(rep.Adopted), len(rep.MovedAside))
	}
	t.Logf("%d cases acknowledged over 20 kill cycles, %d packages indexed, all verify", len(acked), rep.Indexed)
}

// TestLogVerifyCLI: dangan log verify replays a clean log and passes, beside a running
// server; after one event is rewritten in storage it names the first inconsistency.
func TestLogVerifyCLI(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	srv, err := startServer(binary, data)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Kill()
	tok, _ := srv.Token(archive.RoleDepartment, BenchUSCC)
	postCases(t, srv.URL, tok, "LV", 12)
	waitFor(t, func() bool { // a checkpoint covers them
		_, body := get(t, srv.URL+"/api/v1/log/checkpoint", "")
		var cp eventlog.SignedCheckpoint
		json.Unmarshal(body, &cp)
		c, err := eventlog.ParseCheckpoint(cp.Body)
		return err == nil && c.Size >= 12
	})
	out, err := exec.Command(binary, "log", "verify", "--data", data).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK: every event") {
		t.Fatalf("log verify on a clean log: %v\n%s", err, out)
	}
	srv.Kill()
	bundles, _ := filepath.Glob(filepath.Join(data, "objects", "log", "entries", "*.jsonl"))
	rewritten := false
	for _, b := range bundles {
		body, _ := os.ReadFile(b)
		if i := bytes.Index(body, []byte(`"type":"ingest"`)); i >= 0 && !rewritten {
			j := bytes.Index(body[i:], []byte(`"size":"`)) + i + len(`"size":"`)
			body[j] = '9'
			os.Chmod(b, 0o644)
			os.WriteFile(b, body, 0o644)
			rewritten = true
		}
	}
	cmd := exec.Command(binary, "log", "verify", "--data", data)
	out, _ = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "FIRST INCONSISTENCY: checkpoint") {
		t.Fatalf("log verify after a rewrite: exit %d\n%s", cmd.ProcessState.ExitCode(), out)
	}
}

// TestIndexRebuildCLI: dangan index rebuild brings back every package and keeps the tokens.
func TestIndexRebuildCLI(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	srv, err := startServer(binary, data)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := srv.Token(archive.RoleDepartment, BenchUSCC)
	postCases(t, srv.URL, tok, "RB", 25)
	srv.Kill()
	out, err := exec.Command(binary, "index", "rebuild", "--data", data).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "25 indexed") {
		t.Fatalf("index rebuild: %v\n%s", err, out)
	}
	srv, err = startServer(binary, data)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Kill()
	if n, err := countPackages(srv.URL, tok); err != nil || n != 25 {
		t.Fatalf("after the rebuild the department token sees %d packages (%v)", n, err)
	}
}

var backupLine = regexp.MustCompile(`backup: (\d+) objects copied \([^)]*\), (\d+) already there`)

// backupCounts reads how many objects a backup run copied and skipped.
func backupCounts(t *testing.T, out []byte) (copied, skipped int) {
	t.Helper()
	m := backupLine.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no summary line in the backup's output:\n%s", out)
	}
	copied, _ = strconv.Atoi(string(m[1]))
	skipped, _ = strconv.Atoi(string(m[2]))
	return copied, skipped
}

// TestBackupRestoreCLI: back up to MinIO, lose the primary, restore into a fresh data
// directory; every package verifies; a second backup copies only what is new.
func TestBackupRestoreCLI(t *testing.T) {
	minio := miniotest.Start(t)
	t.Setenv("DANGAN_BACKUP_S3_ACCESS_KEY", minio.AccessKey)
	t.Setenv("DANGAN_BACKUP_S3_SECRET_KEY", minio.SecretKey)
	to := []string{"--to-s3-endpoint", minio.Endpoint, "--to-s3-bucket", "dangan-backup"}
	data := filepath.Join(t.TempDir(), "data")
	srv, err := startServer(binary, data)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := srv.Token(archive.RoleDepartment, BenchUSCC)
	postCases(t, srv.URL, tok, "BK", 15)
	srv.Kill()
	out, err := exec.Command(binary, append([]string{"backup", "--data", data}, to...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "15 packages") {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	copied1, skipped1 := backupCounts(t, out)
	srv, _ = startServer(binary, data)
	postCases(t, srv.URL, tok, "BK-NEW", 1)
	srv.Kill()
	out, err = exec.Command(binary, append([]string{"backup", "--data", data}, to...)...).CombinedOutput()
	// Only what is new is copied: the package, its ingest bundle, and the checkpoint when
	// the server lived long enough to write one (the machine's speed decides that).
	copied2, skipped2 := backupCounts(t, out)
	if err != nil || skipped2 != copied1+skipped1 || copied2 < 2 || copied2 > 3 {
		t.Fatalf("second backup (one package and its log objects are new): %v\n%s", err, out)
	}
	os.RemoveAll(data)
	fresh := filepath.Join(t.TempDir(), "fresh")
	out, err = exec.Command(binary, "restore", "--data", fresh, "--from-s3-endpoint", minio.Endpoint, "--from-s3-bucket", "dangan-backup").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "16 packages") {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	srv, err = startServer(binary, fresh)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Kill()
	_, trust := get(t, srv.URL+"/api/v1/trust", "")
	os.WriteFile(filepath.Join(fresh, "trust.pem"), trust, 0o644)
	_, list := get(t, srv.URL+"/api/v1/packages?limit=100", tok)
	var res struct{ Packages []struct{ ID string } }
	json.Unmarshal(list, &res)
	if len(res.Packages) != 16 {
		t.Fatalf("the department's token sees %d packages after the restore", len(res.Packages))
	}
	for _, p := range res.Packages {
		_, file := get(t, srv.URL+"/api/v1/packages/"+p.ID+"/eep", tok)
		_, ev := get(t, srv.URL+"/api/v1/packages/"+p.ID+"/evidence", tok)
		os.WriteFile(filepath.Join(fresh, "p.eep"), file, 0o644)
		os.WriteFile(filepath.Join(fresh, "p.evidence"), ev, 0o644)
		cmd := exec.Command(binary, "verify", filepath.Join(fresh, "p.eep"), "--roots", filepath.Join(fresh, "trust.pem"), "--evidence", filepath.Join(fresh, "p.evidence"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("restored package %s: %v\n%s", p.ID, err, out)
		}
	}
}

// TestBenchLogRuns: dangan bench log runs end to end and ends with the JSON line the
// performance notes quote, every figure measured (short run: the numbers are not judged).
func TestBenchLogRuns(t *testing.T) {
	cmd := exec.Command(binary, "bench", "log", "--seconds", "0.5", "--clients", "8", "--cases", "40")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench log: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res map[string]float64
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line is not the JSON result: %v\n%s", err, out)
	}
	for _, k := range []string{"events_per_s", "inclusion_proofs_per_s", "tokens_per_1000_packages", "raw_durable_writes_per_s", "raw_sm3_mb_per_s_one_core"} {
		if res[k] <= 0 {
			t.Errorf("%s = %v", k, res[k])
		}
	}
	// Forty packages in well under a second need one or two checkpoints, not one each.
	if res["tokens_during_ingest"] > 3 {
		t.Errorf("%v tokens for 40 packages", res["tokens_during_ingest"])
	}
}

// TestBenchVerifyRuns: dangan bench verify issues a certificate, loads the verifier and the
// status lookup, and ends with the JSON line the performance notes quote (short run: the
// numbers are not judged here).
func TestBenchVerifyRuns(t *testing.T) {
	out, err := exec.Command(binary, "bench", "verify", "--seconds", "0.3", "--clients", "4").Output()
	if err != nil {
		t.Fatalf("bench verify: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res map[string]float64
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line is not the JSON result: %v\n%s", err, out)
	}
	for _, k := range []string{"verify_req_per_s", "verify_p99_ms", "status_req_per_s", "pdf_bytes", "raw_sm3_mb_per_s_one_core", "raw_sm2_verify_per_s_one_core",
		"rsa_pdf_req_per_s", "rsa_pdf_p99_ms", "ofd_req_per_s", "ofd_p99_ms", "raw_rsa2048_verify_per_s_one_core"} {
		if res[k] <= 0 {
			t.Errorf("%s = %v", k, res[k])
		}
	}
	if res["pdf_bytes"] < 50_000 {
		t.Errorf("the bench certificate is %v bytes: it should be a realistic signed certificate", res["pdf_bytes"])
	}
}

// TestBenchConvertRuns: dangan bench convert converts a mix through LibreOffice and
// Ghostscript and ends with the JSON line the performance notes quote (short run).
func TestBenchConvertRuns(t *testing.T) {
	testenv.Tool(t, "soffice")
	testenv.Tool(t, "gs")
	out, err := exec.Command(binary, "bench", "convert", "--docs", "24").Output()
	if err != nil {
		t.Fatalf("bench convert: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line is not the JSON result: %v\n%s", err, out)
	}
	for _, k := range []string{"docs_per_s", "peak_rss_mb", "office_docs_per_s_per_core", "workers_rss_peak_second_half_mb", "raw_cold_soffice_s"} {
		if v, _ := res[k].(float64); v <= 0 {
			t.Errorf("%s = %v", k, res[k])
		}
	}
	if res["docs"].(float64) != 24 {
		t.Errorf("docs = %v", res["docs"])
	}
}

// TestMigratePlanCLI: after a policy change (JSON forms kept as they are instead of
// converted to XML), `dangan migrate --plan` lists every form made the old way, with its
// count, packages and bytes; under the policy they were made with, nothing.
func TestMigratePlanCLI(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	srv, err := startServer(binary, data)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := srv.Token(archive.RoleDepartment, BenchUSCC)
	postCases(t, srv.URL, tok, "MG", 12)
	srv.Kill()
	plan := func(extra ...string) archive.MigrationPlan {
		t.Helper()
		out, err := exec.Command(binary, append([]string{"migrate", "--plan", "--json", "--data", data}, extra...)...).Output()
		if err != nil {
			t.Fatalf("migrate --plan %v: %v\n%s", extra, err, out)
		}
		var p archive.MigrationPlan
		if err := json.Unmarshal(out, &p); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return p
	}
	if p := plan(); p.Packages != 12 || len(p.Groups) != 0 {
		t.Fatalf("under the policy the forms were made with: %+v", p)
	}
	policy := filepath.Join(t.TempDir(), "policy.json")
	os.WriteFile(policy, []byte(`{"format":"dangan-format-policy/1","rules":[{"name":"JSON kept","match":["family:json"],"action":"keep"}]}`), 0o644)
	p := plan("--format-policy", policy)
	if len(p.Groups) != 1 {
		t.Fatalf("after the policy change: %+v", p)
	}
	g := p.Groups[0]
	if g.SourcePUID != "fmt/817" || g.MadeTarget != "XML" || g.Now.Action != "keep" || g.Now.Target != "" || g.Documents != 12 || g.Packages != 12 || g.Bytes <= 0 || !g.Migratable {
		t.Fatalf("the JSON forms' group: %+v", g)
	}
	out, err := exec.Command(binary, "migrate", "--plan", "--data", data, "--format-policy", policy).Output()
	if err != nil || !strings.Contains(string(out), "fmt/817") || !strings.Contains(string(out), "12") {
		t.Fatalf("the plan as text: %v\n%s", err, out)
	}
}

// TestMigrateRunCLI: cases archived while JSON forms were kept as they came; after the
// policy makes them XML, `dangan migrate --run` gives every package an amended current form
// (a second run finds nothing left), the plan is then empty, and `dangan verify` on a
// package downloaded from the server says which layer is the current form and which the
// one kept inside, both valid.
func TestMigrateRunCLI(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	keep := testenv.PolicyWith(t, testenv.KeepJSON)
	srv, err := startServer(binary, data, "--format-policy", keep)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := srv.Token(archive.RoleDepartment, BenchUSCC)
	postCases(t, srv.URL, tok, "MR", 5)
	srv.Kill()

	runOnce := func() archive.MigrationRun {
		t.Helper()
		cmd := exec.Command(binary, "migrate", "--run", "--json", "--rate", "100", "--by", "王档案", "--data", data)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("migrate --run: %v\n%s\n%s", err, out, stderr.String())
		}
		var r archive.MigrationRun
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if !strings.Contains(stderr.String(), "migrate: ") {
			t.Fatalf("no progress on stderr: %q", stderr.String())
		}
		return r
	}
	if r := runOnce(); r.Migrated != 5 || r.Documents != 5 || len(r.Failed) != 0 || r.By == "" {
		t.Fatalf("the run: %+v", r)
	}
	if r := runOnce(); r.Total != 0 || r.Migrated != 0 {
		t.Fatalf("a second run: %+v", r)
	}
	out, err := exec.Command(binary, "migrate", "--plan", "--json", "--data", data).Output()
	var p archive.MigrationPlan
	if err != nil || json.Unmarshal(out, &p) != nil || p.Packages != 5 || len(p.Groups) != 0 {
		t.Fatalf("the plan after the run: %v %s", err, out)
	}

	srv, err = startServer(binary, data)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Kill()
	arch, _ := srv.Token(archive.RoleArchive, "")
	status, body := get(t, srv.URL+"/api/v1/packages?limit=1", arch)
	if status != 200 {
		t.Fatalf("list: %d %s", status, body)
	}
	var page struct {
		Packages []struct {
			ID string `json:"id"`
		} `json:"packages"`
	}
	json.Unmarshal(body, &page)
	if len(page.Packages) != 1 {
		t.Fatalf("list: %s", body)
	}
	_, eepBytes := get(t, srv.URL+"/api/v1/packages/"+page.Packages[0].ID+"/eep?purpose=check", arch)
	_, roots := get(t, srv.URL+"/api/v1/trust", "")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "p.eep"), eepBytes, 0o644)
	os.WriteFile(filepath.Join(dir, "roots.pem"), roots, 0o644)
	out, err = exec.Command(binary, "verify", filepath.Join(dir, "p.eep"), "--roots", filepath.Join(dir, "roots.pem")).CombinedOutput()
	text := string(out)
	if err != nil || !strings.HasPrefix(text, "VALID") || !strings.Contains(text, "修改1  current form, 修改型") || !strings.Contains(text, "修改0  kept inside (原封装包), 原始型") || strings.Contains(text, "DO NOT VERIFY") {
		t.Fatalf("dangan verify of a migrated package: %v\n%s", err, text)
	}
}
