package api

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/internal/testenv"
	"github.com/dangan-archive/dangan/storage"
)

// pair is a department's archive and the county archive, each trusting the other's root.
type pair struct {
	dept, county       *archive.Archive
	deptEnv, countyEnv *env
	deptDir, countyDir string
	countyTok          string
	// countyDown, while set, makes the county archive answer 503 to everything.
	countyDown atomic.Bool
}

func newPair(t *testing.T, now func() time.Time) *pair {
	t.Helper()
	p := &pair{deptDir: t.TempDir(), countyDir: t.TempDir()}
	quiet := testenv.Logger()
	open := func(dir string, county *archive.Peer) *archive.Archive {
		a, err := archive.Open(archive.Config{DataDir: dir, Logger: quiet, Now: now, County: county, CheckpointInterval: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	d0, c0 := open(p.deptDir, nil), open(p.countyDir, nil)
	os.WriteFile(filepath.Join(p.countyDir, "pki", "extra-roots.pem"), d0.TrustPEM(), 0o644)
	os.WriteFile(filepath.Join(p.deptDir, "pki", "extra-roots.pem"), c0.TrustPEM(), 0o644)
	d0.Close()
	c0.Close()
	p.county = open(p.countyDir, nil)
	p.countyEnv = envBehind(t, p.county, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p.countyDown.Load() {
				w.Header().Set("Retry-After", "1")
				http.Error(w, "down for the test", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	t.Cleanup(p.countyEnv.close)
	p.countyTok, _ = p.county.CreateToken(archive.RoleDepartment, deptA, "transfers of dept A")
	p.dept = open(p.deptDir, &archive.Peer{URL: p.countyEnv.srv.URL, Token: p.countyTok})
	p.deptEnv = envFor(t, p.dept)
	t.Cleanup(p.deptEnv.close)
	return p
}

// waitTransfer polls a batch until it is no longer being sent.
func waitTransfer(t *testing.T, a *archive.Archive, batch string) *archive.Transfer {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		tr, err := a.TransferStatus(context.Background(), archive.Principal{Role: archive.RoleArchive}, batch)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Status != archive.TransferSending {
			return tr
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the transfer did not finish")
	return nil
}

func TestTransferToCountyArchive(t *testing.T) {
	p := newPair(t, nil)
	ctx := context.Background()
	var ids []string
	for i, ret := range []string{"Y", "Y", "Y", "Y", "Y", "D10"} {
		c, parts := exampleCase(t)
		c["case_no"] = "TR-" + string(rune('A'+i))
		c["retention"] = ret
		c["accepted_at"], c["finished_at"] = "2015-03-01T09:00:00+08:00", "2015-03-05T16:30:00+08:00"
		resp, body := p.deptEnv.ingest(p.deptEnv.tokA, c, parts)
		if resp.StatusCode != 201 {
			t.Fatalf("ingest: %d %s", resp.StatusCode, body)
		}
		ids = append(ids, decode[PackageView](t, body).ID)
	}
	// One package altered at rest in the department's storage before the transfer.
	altered, _ := p.dept.Index().Package(ids[2])
	path := filepath.Join(p.deptDir, "objects", filepath.FromSlash(altered.Key))
	data, _ := os.ReadFile(path)
	i := bytes.Index(data, []byte("<编码数据 ")) + 300
	data[i] ^= 0x01
	os.Chmod(path, 0o644)
	os.WriteFile(path, data, 0o644)

	// Another department's token cannot start this department's transfer.
	if resp, _ := p.deptEnv.do(http.MethodPost, "/api/v1/transfers", p.deptEnv.tokenB(), strings.NewReader(`{"due":true,"department":"`+deptA+`"}`), "application/json"); resp.StatusCode != 403 {
		t.Fatalf("another department: %d", resp.StatusCode)
	}
	resp, body := p.deptEnv.do(http.MethodPost, "/api/v1/transfers", p.deptEnv.tokA, strings.NewReader(`{"due":true}`), "application/json")
	if resp.StatusCode != 202 {
		t.Fatalf("create transfer: %d %s", resp.StatusCode, body)
	}
	tr := decode[archive.Transfer](t, body)
	if tr.Total != 5 {
		t.Fatalf("due Y packages: %d, want 5 (the D10 one stays)", tr.Total)
	}
	tr = *waitTransfer(t, p.dept, tr.Batch)
	if tr.Status != archive.TransferDone || len(tr.Accepted) != 4 || len(tr.Rejected) != 1 {
		t.Fatalf("transfer: %s accepted %d rejected %v error %s", tr.Status, len(tr.Accepted), tr.Rejected, tr.Error)
	}
	reasons := strings.Join(tr.Rejected[ids[2]], "; ")
	if !strings.Contains(reasons, "YJ-1-14") {
		t.Fatalf("the package altered at rest was rejected for: %s", reasons)
	}
	// The receipt verifies with the county archive's root and names the manifest.
	var rc archive.Receipt
	if _, err := tr.Receipt.Verify(p.dept.Trust(), time.Now(), &rc); err != nil || rc.ManifestSM3 != tr.Manifest.SM3() || rc.Accepted != 4 {
		t.Fatalf("receipt: %v %+v", err, rc)
	}
	// Both indexes and both stores.
	for _, id := range ids[:5] {
		dp, _ := p.dept.Index().Package(id)
		cp, cerr := p.county.Index().Package(id)
		if id == ids[2] {
			if dp.Transfer != nil || cerr == nil {
				t.Fatalf("the rejected package: dept %+v, county %v", dp.Transfer, cerr)
			}
			continue
		}
		if dp.Transfer == nil || dp.State != "transferred" || !dp.Transfer.KeepUntil.After(time.Now().AddDate(4, 11, 0)) {
			t.Fatalf("dept record of %s: %+v", id, dp.Transfer)
		}
		if cerr != nil || cp.Source != "transfer:"+tr.Batch || cp.PackageSM3 != dp.PackageSM3 || cp.ArchivalCode != dp.ArchivalCode {
			t.Fatalf("county record of %s: %v %+v", id, cerr, cp)
		}
		if _, err := p.county.Store().Stat(ctx, cp.Key); err != nil {
			t.Fatalf("county store lacks %s: %v", cp.Key, err)
		}
	}
	n := 0
	p.county.Store().List(ctx, "packages/", func(storage.ObjectInfo) error { n++; return nil })
	if n != 4 {
		t.Fatalf("county store holds %d packages, want 4", n)
	}
	// The county archive's copy verifies with its own evidence.
	countyArchive, _ := p.county.CreateToken(archive.RoleArchive, "", "")
	_, evJSON := p.countyEnv.do(http.MethodGet, "/api/v1/packages/"+ids[0]+"/evidence", countyArchive, nil, "")
	_, eepBytes := p.countyEnv.do(http.MethodGet, "/api/v1/packages/"+ids[0]+"/eep?purpose=check", countyArchive, nil, "")
	ev, err := archive.LoadEvidence(evJSON)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := archive.Verify(bytes.NewReader(eepBytes), int64(len(eepBytes)), archive.VerifyOptions{Roots: p.county.Trust(), Evidence: ev}); err != nil || !rep.Valid {
		t.Fatalf("the county archive's copy with its evidence: %v %+v", err, rep)
	}
	// Transferred packages are not offered again.
	resp, _ = p.deptEnv.do(http.MethodPost, "/api/v1/transfers", p.deptEnv.tokA, strings.NewReader(`{"packages":["`+ids[0]+`"]}`), "application/json")
	if resp.StatusCode != 409 {
		t.Fatalf("transfer of a transferred package: %d", resp.StatusCode)
	}
	// The county archive: another department's token does not see this accession.
	tokB, _ := p.county.CreateToken(archive.RoleDepartment, deptB, "")
	if resp, _ := p.countyEnv.do(http.MethodGet, "/api/v1/accessions/"+tr.Batch, tokB, nil, ""); resp.StatusCode != 404 {
		t.Fatalf("another department read the accession: %d", resp.StatusCode)
	}
	if resp, _ := p.countyEnv.do(http.MethodGet, "/api/v1/accessions/"+tr.Batch, p.countyTok, nil, ""); resp.StatusCode != 200 {
		t.Fatalf("own accession: %d", resp.StatusCode)
	}
	// The county archive witnessed the department's log at the transfer.
	if p.county.Log().Stats.Cosigned.Load() == 0 {
		t.Fatal("no cosignature at the transfer")
	}
}

func (e *env) tokenB() string {
	if e.tokB == "" {
		e.tokB, _ = e.a.CreateToken(archive.RoleDepartment, deptB, "")
	}
	return e.tokB
}
