package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emmansun/gmsm/smx509"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/internal/testenv"
	"github.com/dangan-archive/dangan/signing"
	"github.com/dangan-archive/dangan/signing/merkle"
)

// trustFromServer is what an outside verifier does: fetch GET /api/v1/trust.
func trustFromServer(t *testing.T, e *env) *smx509.CertPool {
	t.Helper()
	_, pemData := e.do(http.MethodGet, "/api/v1/trust", "", nil, "")
	certs, err := signing.ParseCertsPEM(pemData)
	if err != nil {
		t.Fatal(err)
	}
	return signing.NewPool(certs...)
}

func (e *env) ingestCase(caseNo string) PackageView {
	e.t.Helper()
	c, parts := exampleCase(e.t)
	c["case_no"] = caseNo
	resp, body := e.ingest(e.tokA, c, parts)
	if resp.StatusCode != 201 {
		e.t.Fatalf("ingest %s: %d %s", caseNo, resp.StatusCode, body)
	}
	return decode[PackageView](e.t, body)
}

func TestEventLogOverHTTP(t *testing.T) {
	e := newEnv(t, Options{})
	roots := trustFromServer(t, e)
	auditor, _ := e.a.CreateToken(archive.RoleAuditor, "", "")
	p1 := e.ingestCase("LOG-1")

	// The evidence verifies the package offline, timestamped through a checkpoint.
	resp, evJSON := e.do(http.MethodGet, "/api/v1/packages/"+p1.ID+"/evidence", e.tokA, nil, "")
	if resp.StatusCode != 200 {
		t.Fatalf("evidence: %d %s", resp.StatusCode, evJSON)
	}
	ev, err := archive.LoadEvidence(evJSON)
	if err != nil {
		t.Fatal(err)
	}
	_, eepBytes := e.do(http.MethodGet, "/api/v1/packages/"+p1.ID+"/eep", e.tokA, nil, "")
	rep, err := archive.Verify(bytes.NewReader(eepBytes), int64(len(eepBytes)), archive.VerifyOptions{Roots: roots, Evidence: ev})
	if err != nil || !rep.Valid || rep.TimestampAt == nil || len(rep.Proof) == 0 {
		t.Fatalf("package with its evidence: %v %+v", err, rep)
	}
	// The package description now says when it was checkpointed.
	_, body := e.do(http.MethodGet, "/api/v1/packages/"+p1.ID, e.tokA, nil, "")
	if pv := decode[PackageView](t, body); pv.Checkpointed == nil || pv.LogIndex != p1.LogIndex {
		t.Fatalf("package view: %+v", pv)
	}

	// Public: the checkpoint, verified with the served roots.
	resp, body = e.do(http.MethodGet, "/api/v1/log/checkpoint", "", nil, "")
	cp1 := decode[eventlog.SignedCheckpoint](t, body)
	info1, err := eventlog.VerifyCheckpoint(&cp1, roots)
	if resp.StatusCode != 200 || err != nil {
		t.Fatalf("checkpoint: %d %v", resp.StatusCode, err)
	}
	// Auditors read the event; its inclusion proof, by index or by leaf hash, leads to the
	// checkpoint's root.
	resp, body = e.do(http.MethodGet, fmt.Sprintf("/api/v1/log/entries?start=%d&count=1", p1.LogIndex), auditor, nil, "")
	entries := decode[struct {
		Entries []eventlog.Entry `json:"entries"`
	}](t, body)
	if resp.StatusCode != 200 || len(entries.Entries) != 1 {
		t.Fatalf("entries: %d %s", resp.StatusCode, body)
	}
	event := entries.Entries[0].Event
	if !strings.Contains(event, p1.ID) || strings.Contains(event, "11010519491231002X") {
		t.Fatalf("the ingest event should name the package and hold no ID number: %s", event)
	}
	leaf := merkle.SM3.LeafHash([]byte(event))
	for _, q := range []string{fmt.Sprintf("index=%d", p1.LogIndex), fmt.Sprintf("leaf_hash=%x", leaf)} {
		resp, body = e.do(http.MethodGet, "/api/v1/log/proof/inclusion?"+q+fmt.Sprintf("&size=%d", info1.Size), "", nil, "")
		ip := decode[InclusionResponse](t, body)
		if resp.StatusCode != 200 || ip.Index != p1.LogIndex {
			t.Fatalf("inclusion %s: %d %s", q, resp.StatusCode, body)
		}
		if err := merkle.SM3.VerifyInclusion(ip.Index, info1.Size, leaf, ip.Proof, info1.Root); err != nil {
			t.Fatalf("inclusion %s: %v", q, err)
		}
	}

	// A second ingest and checkpoint: the consistency proof links the two roots.
	p2 := e.ingestCase("LOG-2")
	e.do(http.MethodGet, "/api/v1/packages/"+p2.ID+"/evidence", e.tokA, nil, "")
	_, body = e.do(http.MethodGet, "/api/v1/log/checkpoint", "", nil, "")
	cp2 := decode[eventlog.SignedCheckpoint](t, body)
	info2, err := eventlog.VerifyCheckpoint(&cp2, roots)
	if err != nil || info2.Size <= info1.Size {
		t.Fatalf("second checkpoint: %v %+v", err, info2)
	}
	resp, body = e.do(http.MethodGet, fmt.Sprintf("/api/v1/log/proof/consistency?from=%d&to=%d", info1.Size, info2.Size), "", nil, "")
	cons := decode[ConsistencyResponse](t, body)
	if err := merkle.SM3.VerifyConsistency(info1.Size, info2.Size, info1.Root, info2.Root, cons.Proof); resp.StatusCode != 200 || err != nil {
		t.Fatalf("consistency: %d %v", resp.StatusCode, err)
	}

	// Bad requests are answered clearly, naming the parameter.
	for _, c := range []struct {
		path, token string
		status      int
		typ, field  string
	}{
		{"/api/v1/log/proof/inclusion?index=abc", "", 422, "invalid-request", "index"},
		{"/api/v1/log/proof/inclusion", "", 422, "invalid-request", "index"},
		{fmt.Sprintf("/api/v1/log/proof/inclusion?index=%d", info2.Size), "", 422, "invalid-request", "size"},
		{"/api/v1/log/proof/inclusion?leaf_hash=zz", "", 422, "invalid-request", "leaf_hash"},
		{fmt.Sprintf("/api/v1/log/proof/inclusion?leaf_hash=%x", merkle.SM3.LeafHash([]byte("no such event"))), "", 404, "not-found", ""},
		{"/api/v1/log/proof/inclusion?index=0&size=99999", "", 400, "bad-range", ""},
		{"/api/v1/log/proof/consistency?from=5&to=2", "", 422, "invalid-request", "from"},
		{"/api/v1/log/proof/consistency?from=1&to=99999", "", 400, "bad-range", ""},
		{"/api/v1/log/entries?count=0", auditor, 422, "invalid-request", "count"},
		{"/api/v1/log/entries", e.tokA, 403, "forbidden", ""},
		{"/api/v1/log/entries", "", 401, "unauthorized", ""},
		{"/api/v1/log/witnessed?origin=x", e.tokA, 403, "forbidden", ""},
	} {
		resp, body := e.do(http.MethodGet, c.path, c.token, nil, "")
		pr := decode[Problem](t, body)
		if resp.StatusCode != c.status || pr.Type != ProblemBase+c.typ || pr.Field != c.field {
			t.Errorf("%s: %d %s", c.path, resp.StatusCode, body)
		}
	}

	// Renewal is the admin's; afterwards the evidence chains through it and still verifies.
	if resp, _ := e.do(http.MethodPost, "/api/v1/log/renew", e.tokA, nil, ""); resp.StatusCode != 403 {
		t.Fatalf("renew by a department: %d", resp.StatusCode)
	}
	if resp, body := e.do(http.MethodPost, "/api/v1/log/renew", e.admin, nil, ""); resp.StatusCode != 200 {
		t.Fatalf("renew: %d %s", resp.StatusCode, body)
	}
	_, evJSON = e.do(http.MethodGet, "/api/v1/packages/"+p1.ID+"/evidence", e.tokA, nil, "")
	ev, _ = archive.LoadEvidence(evJSON)
	if len(ev.Proof.Links) != 2 {
		t.Fatalf("%d links after a renewal", len(ev.Proof.Links))
	}
	if rep, _ := archive.Verify(bytes.NewReader(eepBytes), int64(len(eepBytes)), archive.VerifyOptions{Roots: roots, Evidence: ev}); !rep.Valid {
		t.Fatalf("renewed evidence: %+v", rep.Findings)
	}
	_, m := e.do(http.MethodGet, "/metrics", "", nil, "")
	for _, want := range []string{"dangan_log_size ", "dangan_log_timestamp_tokens_total ", "dangan_log_forks_detected_total 0"} {
		if !strings.Contains(string(m), want) {
			t.Fatalf("metrics lack %q", want)
		}
	}
}

// openWithRoots opens an archive in dir, creating it first so that extra roots can be
// placed before the real open.
func openWithRoots(t *testing.T, dir string, extra []byte) *archive.Archive {
	t.Helper()
	quiet := testenv.Logger()
	if extra != nil {
		if err := os.WriteFile(filepath.Join(dir, "pki", "extra-roots.pem"), extra, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a, err := archive.Open(archive.Config{DataDir: dir, Logger: quiet, CheckpointInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestWitnessOverHTTP: a department archive has the county archive cosign its checkpoints
// over HTTP; the cosignature travels in evidence; when the department's log is rewritten in
// storage, the county archive refuses the next checkpoint and dangan log verify's audit
// finds the change.
func TestWitnessOverHTTP(t *testing.T) {
	deptDir, countyDir := t.TempDir(), t.TempDir()
	d0, c0 := openWithRoots(t, deptDir, nil), openWithRoots(t, countyDir, nil)
	deptRoots, countyRoots := d0.TrustPEM(), c0.TrustPEM()
	d0.Close()
	c0.Close()
	county := openWithRoots(t, countyDir, deptRoots)
	countySrv := httptest.NewServer(New(county, Options{Logger: testenv.Logger()}))
	defer countySrv.Close()
	defer county.Close()
	countyTok, _ := county.CreateToken(archive.RoleDepartment, deptA, "dept A's witness token")
	dept := openWithRoots(t, deptDir, countyRoots)
	ctx := context.Background()
	w := &archive.Peer{URL: countySrv.URL, Token: countyTok}

	de := envFor(t, dept)
	id := de.ingestCase("W-1").ID
	if _, err := dept.Witness(ctx, w); err != nil {
		t.Fatal(err)
	}
	de.ingestCase("W-2")
	sc, err := dept.Witness(ctx, w)
	if err != nil || len(sc.Cosignatures) != 1 {
		t.Fatalf("second cosignature: %v %+v", err, sc)
	}
	// A wrong token is refused before anything is checked.
	if _, err := dept.Witness(ctx, &archive.Peer{URL: countySrv.URL, Token: "dg_wrong"}); err == nil {
		t.Fatal("witnessed with a wrong token")
	}
	// The evidence carries the county archive's cosignature and verifies with both roots.
	ev, err := dept.Evidence(ctx, archive.Principal{Role: archive.RoleArchive}, id)
	if err != nil || ev.Proof.Witnessed == nil {
		t.Fatalf("evidence: %v", err)
	}
	pool := dept.Trust()
	res, err := eventlog.VerifyProof(&ev.Proof, pool)
	if err != nil || len(res.Witnesses) != 1 {
		t.Fatalf("witnessed evidence: %v %+v", err, res)
	}
	origin := dept.Log().Origin()
	de.close()

	// Rewrite one event in the department's storage and lose the log database, as an
	// administrator covering tracks would; the log replays the rewritten history.
	bundles, _ := filepath.Glob(filepath.Join(deptDir, "objects", "log", "entries", "*.jsonl"))
	var rewritten bool
	for _, b := range bundles {
		data, _ := os.ReadFile(b)
		if i := bytes.Index(data, []byte(`"archival_code":"`)); i >= 0 && !rewritten {
			j := i + len(`"archival_code":"`)
			data[j] ^= 1 // a different, still canonical, character
			os.Chmod(b, 0o644)
			if err := os.WriteFile(b, data, 0o644); err != nil {
				t.Fatal(err)
			}
			rewritten = true
		}
	}
	if !rewritten {
		t.Fatal("no ingest event to rewrite")
	}
	os.Remove(filepath.Join(deptDir, "log.db"))
	dept = openWithRoots(t, deptDir, nil)
	if dept.Log().Stats.Inconsistencies.Load() == 0 {
		t.Fatal("the replay did not notice that the history contradicts its signed checkpoints")
	}
	de = envFor(t, dept)
	defer de.close()
	de.ingestCase("W-3")
	if _, err := dept.Witness(ctx, w); !errors.Is(err, eventlog.ErrFork) {
		t.Fatalf("the witness accepted a rewritten history: %v", err)
	}
	if county.Log().Stats.Forks.Load() != 1 {
		t.Fatal("the fork is not counted at the witness")
	}
	auditor, _ := county.CreateToken(archive.RoleAuditor, "", "")
	req, _ := http.NewRequest(http.MethodGet, countySrv.URL+"/api/v1/log/witnessed?origin="+origin, nil)
	req.Header.Set("Authorization", "Bearer "+auditor)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("witnessed record: %v %v", err, resp)
	}
	resp.Body.Close()
	rep, err := eventlog.Audit(ctx, dept.Store(), dept.Trust(), nil)
	if err != nil || rep.OK() || !strings.Contains(rep.Problems[0], "checkpoint") {
		t.Fatalf("audit of the rewritten log: %v %+v", err, rep)
	}
}

// envFor serves an open archive, with department A's token.
func envFor(t *testing.T, a *archive.Archive) *env { return envBehind(t, a, nil) }

// envBehind serves a's API through wrap (nil: directly).
func envBehind(t *testing.T, a *archive.Archive, wrap func(http.Handler) http.Handler) *env {
	var h http.Handler = New(a, Options{Logger: testenv.Logger()})
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	e := &env{t: t, a: a, srv: srv}
	e.tokA, _ = a.CreateToken(archive.RoleDepartment, deptA, "")
	return e
}

func (e *env) close() {
	e.srv.Close()
	e.a.Close()
}
