package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/archive"
)

// cluster is the 4-node MinIO of ../shared/scripts/dminio.sh (one erasure set, EC:2: read
// quorum 2, write quorum 3), each node in its own network namespace.
type cluster struct {
	t      *testing.T
	script string
	dir    string
}

const clusterEndpoints = "10.77.0.11:9000,10.77.0.12:9000,10.77.0.13:9000,10.77.0.14:9000"

func startCluster(t *testing.T) *cluster {
	t.Helper()
	script, err := filepath.Abs("../../../shared/scripts/dminio.sh")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("the cluster script is missing (../shared beside the checkout): %v", err)
	}
	c := &cluster{t: t, script: script, dir: filepath.Join(t.TempDir(), "dminio")}
	c.run("down") // what an interrupted run left
	c.run("up")
	t.Cleanup(func() { c.run("down") })
	t.Setenv("DANGAN_S3_ACCESS_KEY", "dangan")
	t.Setenv("DANGAN_S3_SECRET_KEY", "dangan-secret")
	return c
}

// clusterArchive is the cluster with a dangan serving on it and a department token.
func clusterArchive(t *testing.T) (*cluster, *testServer, string) {
	t.Helper()
	c := startCluster(t)
	data := t.TempDir()
	initArchive(t, data, "--s3-endpoint", clusterEndpoints, "--s3-bucket", "dangan")
	srv, err := startServer(binary, data, "--s3-endpoint", clusterEndpoints, "--s3-bucket", "dangan")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Kill)
	tok, err := srv.Token("department", BenchUSCC)
	if err != nil {
		t.Fatal(err)
	}
	return c, srv, tok
}

func (c *cluster) run(args ...string) {
	c.t.Helper()
	// Network namespaces need root: sudo when the tests run as someone else.
	argv := append([]string{"env", "DMINIO_DIR=" + c.dir, "bash", c.script}, args...)
	if os.Geteuid() != 0 {
		argv = append([]string{"sudo", "-n"}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	out, err := cmd.CombinedOutput()
	if err != nil && args[0] != "down" {
		c.t.Fatalf("dminio.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// On the 4-node cluster, named node by node without a load balancer: with one node killed
// (the one dangan was talking to) ingest and reads go on; with two killed (write quorum
// lost) an ingest answers 503 with Retry-After within 10 s, /readyz says why, and reads go on
// (read quorum holds); when the nodes are back, ingest works again without a restart, and
// every acknowledged case is there and verifies.
func TestClusterLosesNodes(t *testing.T) {
	c, srv, tok := clusterArchive(t)
	files, order := smallFiles(t)
	acked := map[string]string{} // case number → package id
	n := 0
	ingest := func() (int, string, http.Header, time.Duration) {
		n++
		no := fmt.Sprintf("CL-%03d", n)
		start := time.Now()
		req, err := multipartRequest(srv.URL, tok, benchCase(no, order), files, order)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p struct{ ID string }
		json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if resp.StatusCode == http.StatusCreated {
			acked[no] = p.ID
		}
		return resp.StatusCode, p.ID, resp.Header, time.Since(start)
	}
	// ingestRetrying is a client that retries on 503 as Retry-After says, for up to a minute.
	ingestRetrying := func(what string) (retries int) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			status, _, h, _ := ingest()
			if status == http.StatusCreated {
				return retries
			}
			if status != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || time.Now().After(deadline) {
				t.Fatalf("%s: ingest answered %d", what, status)
			}
			retries++
			time.Sleep(time.Second)
		}
	}
	readAll := func(what string) {
		t.Helper()
		for no, id := range acked {
			if status, body := get(t, srv.URL+"/api/v1/packages/"+id+"/eep", tok); status != http.StatusOK {
				t.Fatalf("%s: package of %s: %d %s", what, no, status, body)
			}
		}
	}
	for i := 0; i < 5; i++ {
		ingestRetrying("all nodes up")
	}

	c.run("kill", "1")
	retries := 0
	for i := 0; i < 5; i++ {
		retries += ingestRetrying("node 1 killed")
	}
	readAll("node 1 killed")
	t.Logf("node 1 killed: 5 ingests acknowledged with %d retries on 503", retries)
	// The audit reads every package on three nodes.
	arch, err := srv.Token("archive", "")
	if err != nil {
		t.Fatal(err)
	}
	postJSON(t, srv.URL+"/api/v1/audits/run", arch, map[string]any{"all": true}, nil, http.StatusAccepted)
	var run struct {
		Running        bool
		Done, Failures int
	}
	waitFor(t, func() bool {
		getJSON(t, srv.URL+"/api/v1/audits/run", arch, &run)
		return !run.Running
	})
	if run.Done != len(acked) || run.Failures != 0 {
		t.Fatalf("the audit with node 1 killed: %+v, %d acknowledged", run, len(acked))
	}

	c.run("kill", "2")
	status, _, h, took := ingest()
	for status == http.StatusCreated && took < 10*time.Second { // a write in flight may still reach quorum
		status, _, h, took = ingest()
	}
	if status != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || took > 10*time.Second {
		t.Fatalf("write quorum lost: %d in %v, Retry-After %q", status, took, h.Get("Retry-After"))
	}
	t.Logf("write quorum lost: 503 after %v", took.Round(time.Millisecond))
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready struct{ Detail, Status string }
	json.NewDecoder(resp.Body).Decode(&ready)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with write quorum lost: %d %+v", resp.StatusCode, ready)
	}
	readAll("two nodes killed")

	back := time.Now()
	c.run("start", "1")
	c.run("start", "2")
	ingestRetrying("nodes back")
	t.Logf("nodes back: ingest acknowledged %v after the restart began", time.Since(back).Round(time.Millisecond))
	readAll("nodes back")

	// Every acknowledged case is listed once, and each package verifies offline.
	var list struct {
		Packages []struct {
			ID     string `json:"id"`
			CaseNo string `json:"case_no"`
		} `json:"packages"`
	}
	getJSON(t, srv.URL+"/api/v1/packages?limit=100", tok, &list)
	found := map[string]bool{}
	for _, p := range list.Packages {
		found[p.CaseNo] = true
	}
	for no := range acked {
		if !found[no] {
			t.Fatalf("acknowledged %s is missing", no)
		}
	}
	t.Logf("%d acknowledged, %d listed", len(acked), len(list.Packages))
}

// Twenty times a random node is killed while eight clients ingest, and started again: every
// case acknowledged is there at the end, reads back whole and verifies.
func TestClusterKillCycles(t *testing.T) {
	c, srv, tok := clusterArchive(t)
	data := srv.Data
	files, order := smallFiles(t)
	var mu sync.Mutex
	acked := map[string]bool{}
	refused := 0
	var seq atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				no := fmt.Sprintf("KC-%05d", seq.Add(1))
				status, body, err := postMultipart(http.DefaultClient, srv.URL, tok, benchCase(no, order), files, order)
				mu.Lock()
				switch {
				case err == nil && status == http.StatusCreated:
					acked[no] = true
				case err == nil && status == http.StatusServiceUnavailable:
					refused++
				default:
					t.Errorf("ingest %s: %d %v %s", no, status, err, body)
				}
				mu.Unlock()
				if status == http.StatusServiceUnavailable {
					time.Sleep(200 * time.Millisecond) // a client backs off
				}
			}
		}()
	}
	start := time.Now()
	for cycle := 0; cycle < 20; cycle++ {
		node := strconv.Itoa(1 + mrand.IntN(4))
		c.run("kill", node)
		time.Sleep(300 * time.Millisecond) // ingests go on against three nodes
		c.run("start", node)
	}
	close(stop)
	wg.Wait()
	if t.Failed() {
		for _, line := range strings.Split(srv.out.String(), "\n") {
			if strings.Contains(line, "internal error") {
				t.Log(line)
			}
		}
	}
	c.run("heal")
	t.Logf("20 kill cycles in %v: %d acknowledged, %d refused with 503", time.Since(start).Round(time.Second), len(acked), refused)
	if len(acked) < 20 {
		t.Fatalf("only %d cases acknowledged", len(acked))
	}
	arch, err := srv.Token("archive", "")
	if err != nil {
		t.Fatal(err)
	}
	found, ids := map[string]bool{}, map[string]bool{}
	roots := loadPool(t, filepath.Join(data, "pki", "root.pem"))
	for cursor := ""; ; {
		var page struct {
			Packages []struct {
				ID     string `json:"id"`
				CaseNo string `json:"case_no"`
			} `json:"packages"`
			Next string `json:"next"`
		}
		getJSON(t, srv.URL+"/api/v1/packages?limit=100&cursor="+cursor, tok, &page)
		for _, p := range page.Packages {
			found[p.CaseNo] = true
			ids[p.ID] = true
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	for no := range acked {
		if !found[no] {
			t.Fatalf("acknowledged %s is missing", no)
		}
	}
	// Each acknowledged package reads back whole and verifies against its evidence.
	for id := range ids {
		status, eepBytes := get(t, srv.URL+"/api/v1/packages/"+id+"/eep", arch)
		_, evJSON := get(t, srv.URL+"/api/v1/packages/"+id+"/evidence", arch)
		if status != http.StatusOK {
			t.Fatalf("package %s: %d", id, status)
		}
		ev, err := archive.LoadEvidence(evJSON)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := archive.Verify(bytes.NewReader(eepBytes), int64(len(eepBytes)), archive.VerifyOptions{Roots: roots, Evidence: ev})
		if err != nil || !rep.Valid {
			t.Fatalf("package %s does not verify: %v %+v", id, err, rep)
		}
	}
}
