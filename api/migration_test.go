package api

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/internal/testenv"
)

// reopenDept restarts the department's archive under another format policy ("" the
// shipped one), as an archive does when its policy changes.
func (p *pair) reopenDept(t *testing.T, policy string) {
	t.Helper()
	p.deptEnv.close()
	a, err := archive.Open(archive.Config{DataDir: p.deptDir, Logger: testenv.Logger(), FormatPolicy: policy,
		County: &archive.Peer{URL: p.countyEnv.srv.URL, Token: p.countyTok}, CheckpointInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p.dept, p.deptEnv = a, envFor(t, a)
	t.Cleanup(p.deptEnv.close)
}

// A permanent case archived while JSON form data was kept as it came is refused by the
// county archive (JSON is not an archival format); after the policy makes JSON into XML and
// a migration run over the API gives the package its amended form, the same package passes
// every check of the county archive, which holds it with both layers verifying. The form as
// archived is still served by the department, unchanged.
func TestTransferOfAMigratedPackage(t *testing.T) {
	p := newPair(t, nil)
	keep := testenv.PolicyWith(t, testenv.KeepJSON)
	p.reopenDept(t, keep)

	c, parts := exampleCase(t)
	c["department"] = map[string]any{"name": "清涧县市场监督管理局", "uscc": deptA}
	c["retention"] = "Y"
	c["accepted_at"], c["finished_at"] = "2015-03-01T09:00:00+08:00", "2015-03-05T16:30:00+08:00"
	resp, body := p.deptEnv.ingest(p.deptEnv.tokA, c, parts)
	if resp.StatusCode != 201 {
		t.Fatalf("ingest: %d %s", resp.StatusCode, body)
	}
	id := decode[PackageView](t, body).ID
	before, _ := p.dept.Index().Package(id)

	p.reopenDept(t, "")
	arch, _ := p.dept.CreateToken(archive.RoleArchive, "", "王档案")
	resp, body = p.deptEnv.postJSON("/api/v1/migrations", arch, `{"rate":50}`)
	if resp.StatusCode != 202 {
		t.Fatalf("start migration: %d %s", resp.StatusCode, body)
	}
	var run archive.MigrationRun
	for deadline := time.Now().Add(60 * time.Second); ; {
		_, body = p.deptEnv.do(http.MethodGet, "/api/v1/migrations/current", arch, nil, "")
		run = decode[archive.MigrationRun](t, body)
		if !run.Running || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if run.Running || run.Migrated != 1 || run.Documents != 1 || len(run.Failed) != 0 || run.Error != "" {
		t.Fatalf("migration run: %+v", run)
	}
	after, _ := p.dept.Index().Package(id)
	if after.Layer != 1 || after.Prior[0].PackageSM3 != before.PackageSM3 || after.Documents[0].Encoded[0].MIME != "application/xml" {
		t.Fatalf("migrated record: %+v", after)
	}
	resp, orig := p.deptEnv.do(http.MethodGet, "/api/v1/packages/"+id+"/eep?layer=0&purpose=check", arch, nil, "")
	if resp.StatusCode != 200 || resp.Header.Get("X-Package-SM3") != before.PackageSM3 || int64(len(orig)) != before.Size {
		t.Fatalf("the form as archived: %d %s", resp.StatusCode, resp.Header.Get("X-Package-SM3"))
	}

	_, evJSON := p.deptEnv.do(http.MethodGet, "/api/v1/packages/"+id+"/evidence?layer=0", arch, nil, "")
	ev, err := archive.LoadEvidence(evJSON)
	if err != nil {
		t.Fatalf("evidence of the form as archived: %v %s", err, evJSON)
	}
	if rep, err := archive.Verify(bytes.NewReader(orig), int64(len(orig)), archive.VerifyOptions{Roots: p.dept.Trust(), Evidence: ev}); err != nil || !rep.Valid || len(rep.Layers) != 0 {
		t.Fatalf("the form as archived with its evidence: %v %+v", err, rep)
	}
	_, body = p.deptEnv.do(http.MethodGet, "/api/v1/packages/"+id, arch, nil, "")
	if v := decode[PackageView](t, body); v.Layer != 1 || len(v.Prior) != 1 || v.Prior[0].Layer != 0 || v.Prior[0].Links["eep"] != "/api/v1/packages/"+id+"/eep?layer=0" {
		t.Fatalf("the package view: %s", body)
	}

	resp, body = p.deptEnv.postJSON("/api/v1/transfers", p.deptEnv.tokA, `{"packages":["`+id+`"]}`)
	if resp.StatusCode != 202 {
		t.Fatalf("create transfer: %d %s", resp.StatusCode, body)
	}
	tr := *waitTransfer(t, p.dept, decode[archive.Transfer](t, body).Batch)
	if tr.Status != archive.TransferDone || len(tr.Accepted) != 1 {
		t.Fatalf("transfer of the migrated package: %s accepted %v rejected %v %s", tr.Status, tr.Accepted, tr.Rejected, tr.Error)
	}
	cp, err := p.county.Index().Package(id)
	if err != nil || cp.PackageSM3 != after.PackageSM3 || cp.Layer != 1 || cp.ArchivalCode != after.ArchivalCode || cp.Documents[0].Encoded[0].MIME != "application/xml" {
		t.Fatalf("the county archive's record: %v %+v", err, cp)
	}
	rc, info, err := p.county.Store().Get(t.Context(), cp.Key)
	if err != nil {
		t.Fatal(err)
	}
	held, _ := io.ReadAll(rc)
	rc.Close()
	rep, err := archive.Verify(bytes.NewReader(held), info.Size, archive.VerifyOptions{Roots: p.county.Trust()})
	if err != nil || !rep.Valid || len(rep.Layers) != 2 || !rep.Layers[1].Valid || !strings.HasPrefix(rep.Layers[1].Layer, "修改0") {
		t.Fatalf("the county archive's copy: %v %+v", err, rep)
	}
}
