package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/formats/eep"
	"github.com/dangan-archive/dangan/internal/testenv"
	"github.com/dangan-archive/dangan/signing"
	"github.com/dangan-archive/dangan/storage/index"
)

// quiet is the tests' logger: nothing shown, every line checked for tokens (TestMain).
func quiet() *slog.Logger { return testenv.Logger() }

func TestMain(m *testing.M) { testenv.RunCheckingLogs(m) }

func oneDoc(t *testing.T) func() (*Upload, error) {
	t.Helper()
	data, err := os.ReadFile("../examples/case-001/decision.pdf")
	if err != nil {
		t.Fatal(err)
	}
	sent := false
	return func() (*Upload, error) {
		if sent {
			return nil, io.EOF
		}
		sent = true
		return &Upload{Part: "doc", FileName: "decision.pdf", Body: bytes.NewReader(data)}, nil
	}
}

var dept = Principal{Role: RoleDepartment, Org: "91610830MA6Y00001G"}

// TestExternalTSA timestamps with a TSA reached over HTTP (another PKI's). While its root is
// not trusted, ingests are still archived and logged, but no checkpoint is accepted, so no
// evidence is given; once the root is in pki/extra-roots.pem the same package's evidence is
// made and verifies.
func TestExternalTSA(t *testing.T) {
	tsaHome, err := Open(Config{DataDir: t.TempDir(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer tsaHome.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := io.ReadAll(r.Body)
		w.Write(tsaHome.TSA().Respond(req))
	}))
	defer srv.Close()

	dir := t.TempDir()
	a, err := Open(Config{DataDir: dir, TSAURL: srv.URL, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	first, err := a.Ingest(context.Background(), dept, benchCaseFor("EXT-0"), oneDoc(t))
	if err != nil {
		t.Fatalf("ingest while the TSA is untrusted: %v", err)
	}
	if _, err := a.Evidence(context.Background(), Principal{Role: RoleArchive}, first.Package.ID); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("evidence from an untrusted TSA: %v", err)
	}
	if a.Log().Latest() != nil {
		t.Fatal("a checkpoint was kept with an untrusted token")
	}
	a.Close()

	os.WriteFile(filepath.Join(dir, "pki", "extra-roots.pem"), tsaHome.TrustPEM(), 0o644)
	a, err = Open(Config{DataDir: dir, TSAURL: srv.URL, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	res := first
	if !strings.Contains(string(a.TrustPEM()), strings.TrimSpace(string(tsaHome.TrustPEM()))) {
		t.Fatal("GET /api/v1/trust would not list the external TSA's root")
	}
	ev, err := a.Evidence(context.Background(), Principal{Role: RoleArchive}, res.Package.ID)
	if err != nil {
		t.Fatal(err)
	}
	rc, _, _ := a.OpenEEP(context.Background(), Principal{Role: RoleArchive}, res.Package.ID)
	file, _ := io.ReadAll(rc)
	rc.Close()
	rep, err := Verify(bytes.NewReader(file), int64(len(file)), VerifyOptions{Roots: a.Trust(), Evidence: ev})
	if err != nil || !rep.Valid {
		t.Fatalf("package timestamped by the external TSA does not verify: %v %+v", err, rep)
	}
	if _, err := signing.LoadCerts(filepath.Join(dir, "pki", "extra-roots.pem")); err != nil {
		t.Fatal(err)
	}
}

// TestForeignNonCanonicalPackage: a package whose bytes are not canonical (another
// writer's attribute order, quotes, comments) still verifies, by canonicalisation; a change
// to its content still fails.
func TestForeignNonCanonicalPackage(t *testing.T) {
	a, err := Open(Config{DataDir: t.TempDir(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	res, err := a.Ingest(context.Background(), dept, benchCaseFor("FOREIGN-1"), oneDoc(t))
	if err != nil {
		t.Fatal(err)
	}
	rc, _, _ := a.OpenEEP(context.Background(), Principal{Role: RoleArchive}, res.Package.ID)
	file, _ := io.ReadAll(rc)
	rc.Close()
	s := string(file)
	s = strings.Replace(s, `<被签名对象 xmlns="`+eep.Namespace+`" eep版本="2009">`, `<被签名对象   eep版本='2009' xmlns="`+eep.Namespace+`" >`, 1)
	s = strings.Replace(s, "<封装包类型>", "<!-- written by another system --><封装包类型 >", 1)
	foreign := []byte(s)
	verify := func(b []byte) *Report {
		rep, err := Verify(bytes.NewReader(b), int64(len(b)), VerifyOptions{Roots: a.Trust()})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	rep := verify(foreign)
	sigOK := false
	for _, f := range rep.Findings {
		if f.Where == "电子签名 部门签名1" && f.Status == eep.Pass && strings.Contains(f.Detail, "C14N form") {
			sigOK = true
		}
	}
	if !sigOK {
		t.Fatalf("non-canonical but unchanged package: signature not verified through C14N: %+v", rep.Findings)
	}
	changed := []byte(strings.Replace(s, "食品经营许可证核发", "食品经营许可证注销", 1))
	for _, f := range verify(changed).Findings {
		if f.Where == "电子签名 部门签名1" && f.Status == eep.Pass && strings.Contains(f.Detail, "signature") {
			t.Fatal("a changed foreign package verified")
		}
	}
}

// TestIngestBackPressure: with every slot taken, another ingest fails fast with ErrBusy
// (503 and Retry-After at the API) instead of queueing without bound.
func TestIngestBackPressure(t *testing.T) {
	a, err := Open(Config{DataDir: t.TempDir(), Logger: quiet(), MaxIngests: 1, IngestWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	release := make(chan struct{})
	started := make(chan struct{})
	done := make(chan error)
	go func() {
		first := true
		_, err := a.Ingest(context.Background(), dept, benchCaseFor("SLOW-1"), func() (*Upload, error) {
			if first {
				first = false
				close(started)
				<-release // a slow client holds the slot
			}
			return nil, io.EOF
		})
		done <- err
	}()
	<-started
	start := time.Now()
	_, err = a.Ingest(context.Background(), dept, benchCaseFor("FAST-1"), oneDoc(t))
	if !errors.Is(err, ErrBusy) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("second ingest with the slot taken: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("busy answer took %v", d)
	}
	close(release)
	<-done
	if _, err := a.Ingest(context.Background(), dept, benchCaseFor("FAST-1"), oneDoc(t)); err != nil {
		t.Fatalf("ingest after the slot freed: %v", err)
	}
}

// TestBatchTimestampNegativeVectors: a package's evidence does not vouch for another
// package, and a manifest changed after timestamping does not verify.
func TestBatchTimestampNegativeVectors(t *testing.T) {
	a, err := Open(Config{DataDir: t.TempDir(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	arch := Principal{Role: RoleArchive}
	var ids []string
	for _, no := range []string{"NEG-1", "NEG-2"} {
		res, err := a.Ingest(context.Background(), dept, benchCaseFor(no), oneDoc(t))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.Package.ID)
	}
	file := func(id string) []byte {
		rc, _, err := a.OpenEEP(context.Background(), arch, id)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return b
	}
	ev := func(id string) *Evidence {
		e, err := a.Evidence(context.Background(), arch, id)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	tsFinding := func(b []byte, e *Evidence) eep.Finding {
		rep, err := Verify(bytes.NewReader(b), int64(len(b)), VerifyOptions{Roots: a.Trust(), Evidence: e})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range rep.Findings {
			if f.Where == "时间戳" {
				return f
			}
		}
		t.Fatal("no timestamp finding")
		return eep.Finding{}
	}
	if f := tsFinding(file(ids[0]), ev(ids[0])); f.Status != eep.Pass {
		t.Fatalf("own evidence: %+v", f)
	}
	// Package 2 with package 1's evidence, even relabelled with package 2's id.
	other := ev(ids[0])
	if f := tsFinding(file(ids[1]), other); f.Status != eep.Fail {
		t.Fatalf("another package's evidence accepted: %+v", f)
	}
	other.PackageID = ids[1]
	if f := tsFinding(file(ids[1]), other); f.Status != eep.Fail {
		t.Fatalf("relabelled evidence accepted: %+v", f)
	}
	// The ingest event rewritten in the evidence: the inclusion proof no longer holds.
	forged := ev(ids[0])
	forged.Proof.Links[0].Event = strings.Replace(forged.Proof.Links[0].Event, ids[0], ids[1], 1)
	if f := tsFinding(file(ids[0]), forged); f.Status != eep.Fail || !strings.Contains(f.Found, "inclusion") {
		t.Fatalf("rewritten ingest event accepted: %+v", f)
	}
	// No links at all.
	cut := ev(ids[0])
	cut.Proof.Links = nil
	if f := tsFinding(file(ids[0]), cut); f.Status != eep.Fail {
		t.Fatalf("evidence without a proof accepted: %+v", f)
	}
}

// The same case sent many times at once while other cases are committed: one package, one
// ingest event, and every sender answered with that package.
func TestSameCaseSentConcurrently(t *testing.T) {
	a, err := Open(Config{DataDir: t.TempDir(), Logger: quiet(), MaxIngests: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	const twins, others = 16, 24
	type answer struct {
		res *IngestResult
		err error
	}
	answers := make(chan answer, twins+others)
	var wg sync.WaitGroup
	for i := 0; i < twins+others; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			no := "TWIN-1"
			if i >= twins {
				no = fmt.Sprintf("OTHER-%02d", i)
			}
			res, err := a.Ingest(context.Background(), dept, benchCaseFor(no), oneDoc(t))
			if no == "TWIN-1" {
				answers <- answer{res, err}
			} else if err != nil {
				t.Errorf("%s: %v", no, err)
			}
		}()
	}
	wg.Wait()
	close(answers)
	var id string
	created := 0
	for ans := range answers {
		if ans.err != nil {
			t.Fatalf("a twin failed: %v", ans.err)
		}
		if id == "" {
			id = ans.res.Package.ID
		}
		if ans.res.Package.ID != id {
			t.Fatalf("twins answered with packages %s and %s", id, ans.res.Package.ID)
		}
		if ans.res.Created {
			created++
		}
	}
	if created != 1 {
		t.Fatalf("%d twins say they created the package", created)
	}
	if n, _ := a.Index().Count(); n != 1+others {
		t.Fatalf("index holds %d packages, want %d", n, 1+others)
	}
	entries, err := a.elog.Entries(context.Background(), 0, a.elog.Size())
	if err != nil {
		t.Fatal(err)
	}
	events := 0
	for _, e := range entries {
		if strings.Contains(e.Event, id) && strings.Contains(e.Event, `"ingest"`) {
			events++
		}
	}
	if events != 1 {
		t.Fatalf("%d ingest events for the case, want 1", events)
	}
}

// A case sent again while its first sending is logged but not yet indexed waits for it: it
// is not logged a second time, and it is answered with the package the first one made.
func TestTwinOfAPendingCaseWaitsForIt(t *testing.T) {
	a, err := Open(Config{DataDir: t.TempDir(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	req := func(id string) *commitReq {
		return &commitReq{done: make(chan commitRes, 1), sig: []byte("sig"), rec: &index.Package{ID: id, Department: dept.Org, CaseNo: "TWIN-2",
			Series: "T/2025/D30", ItemNo: 1, Year: 2025, Retention: "D30", State: "archived", IngestedAt: time.Now().UTC(), PackageSM3: "00"}}
	}
	p := &pendingCases{byCase: map[string]*commitGroup{}}
	before := a.elog.Size()
	g := a.logStage([]*commitReq{req("p-first")}, p)
	twin := req("p-twin")
	if g2 := a.logStage([]*commitReq{twin}, p); g2 != nil {
		t.Fatal("the twin of a pending case was logged")
	}
	if n := a.elog.Size() - before; n != 1 {
		t.Fatalf("%d events logged, want 1", n)
	}
	select {
	case res := <-twin.done:
		t.Fatalf("the twin was answered before its case was indexed: %+v", res)
	default:
	}
	a.indexStage([]*commitGroup{g}, p)
	res := <-twin.done
	if !errors.Is(res.err, index.ErrCaseExists) || res.existing == nil || res.existing.ID != "p-first" {
		t.Fatalf("twin answered %+v, want the first package as a re-send", res)
	}
	if len(p.byCase) != 0 {
		t.Fatalf("cases still pending: %v", p.byCase)
	}
	// Sent once more after it is archived: answered from the index, not logged.
	again := req("p-again")
	if g3 := a.logStage([]*commitReq{again}, p); g3 != nil || a.elog.Size()-before != 1 {
		t.Fatal("a case already archived was logged again")
	}
	if res := <-again.done; !errors.Is(res.err, index.ErrCaseExists) || res.existing.ID != "p-first" {
		t.Fatalf("re-send answered %+v", res)
	}
}
