package api

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/storage"
	"github.com/dangan-archive/dangan/storage/index"
	"github.com/dangan-archive/dangan/storage/miniotest"
)

// On MinIO a package is pinned to the version dangan wrote. A delete marker and then a
// newer version planted with the bucket's credentials do not hide it: the package is
// still served, byte for byte, and verifies; each such read is counted as tampering; the
// audit fails the package naming the marker and the newer version.
func TestPinnedVersionsOnMinIO(t *testing.T) {
	srv := miniotest.Start(t)
	ctx := context.Background()
	st, err := storage.OpenS3(ctx, storage.S3Config{Endpoint: srv.Endpoint, Bucket: "dangan-pinned", AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvOn(t, Options{}, st)
	c, parts := exampleCase(t)
	resp, body := e.ingest(e.tokA, c, parts)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("ingest: %d %s", resp.StatusCode, body)
	}
	id := decode[PackageView](t, body).ID
	p, err := e.a.Index().Package(id)
	if err != nil || p.Version == "" {
		t.Fatalf("no version pinned: %+v %v", p, err)
	}
	_, archived := e.do(http.MethodGet, "/api/v1/packages/"+id+"/eep", e.tokA, nil, "")
	_, evJSON := e.do(http.MethodGet, "/api/v1/packages/"+id+"/evidence", e.tokA, nil, "")
	ev, err := archive.LoadEvidence(evJSON)
	if err != nil {
		t.Fatal(err)
	}

	raw, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	served := func(step string) {
		t.Helper()
		before := archive.Tamperings()
		resp, got := e.do(http.MethodGet, "/api/v1/packages/"+id+"/eep", e.tokA, nil, "")
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, archived) {
			t.Fatalf("%s: the package is %d, %d bytes (archived %d)", step, resp.StatusCode, len(got), len(archived))
		}
		if rep := verifyBytes(t, e, got, ev); !rep.Valid {
			t.Fatalf("%s: does not verify: %+v", step, rep.Findings)
		}
		resp, doc := e.do(http.MethodGet, "/api/v1/packages/"+id+"/documents/1?original=1", e.tokA, nil, "")
		if resp.StatusCode != http.StatusOK || !bytes.Equal(doc, parts[0].data) {
			t.Fatalf("%s: document 1: %d", step, resp.StatusCode)
		}
		if archive.Tamperings() < before+2 {
			t.Fatalf("%s: the reads were not counted as tampering", step)
		}
	}
	if err := raw.RemoveObject(ctx, "dangan-pinned", p.Key, minio.RemoveObjectOptions{}); err != nil {
		t.Fatalf("plant a delete marker: %v", err)
	}
	served("after a delete marker")
	forged := []byte("<not the archived package>")
	if _, err := raw.PutObject(ctx, "dangan-pinned", p.Key, bytes.NewReader(forged), int64(len(forged)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("plant a newer version: %v", err)
	}
	served("after a newer version")
	_, metrics := e.do(http.MethodGet, "/metrics", "", nil, "")
	if !bytes.Contains(metrics, []byte("dangan_object_tamperings_total")) {
		t.Fatal("no tampering metric")
	}

	// A package recorded before versions were: the audit pins its oldest version (the one
	// dangan wrote), so a delete marker planted on it is found too and then served past.
	c2 := exampleCaseNo(t, c, "PIN-OLD-1")
	resp, body = e.ingest(e.tokA, c2, parts)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("ingest: %d %s", resp.StatusCode, body)
	}
	old := decode[PackageView](t, body).ID
	_, oldArchived := e.do(http.MethodGet, "/api/v1/packages/"+old+"/eep", e.tokA, nil, "")
	op, _ := e.a.Index().Package(old)
	wrote := op.Version
	if _, err := e.a.Index().UpdatePackage(old, func(q *index.Package) error { q.Version = ""; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := raw.RemoveObject(ctx, "dangan-pinned", op.Key, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}

	if _, err := e.a.StartAudit(ctx, archive.Principal{Role: archive.RoleArchive}, true, 0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		run, err := e.a.AuditRunStatus(archive.Principal{Role: archive.RoleAuditor})
		if err != nil {
			t.Fatal(err)
		}
		if !run.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the audit did not finish")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if op, _ := e.a.Index().Package(old); op.Version != wrote {
		t.Fatalf("the audit pinned %q, dangan wrote %q", op.Version, wrote)
	}
	if resp, got := e.do(http.MethodGet, "/api/v1/packages/"+old+"/eep", e.tokA, nil, ""); resp.StatusCode != http.StatusOK || !bytes.Equal(got, oldArchived) {
		t.Fatalf("the older package after the audit: %d", resp.StatusCode)
	}
	failed, _, err := e.a.Audits(ctx, archive.Principal{Role: archive.RoleAuditor}, archive.AuditFilter{Package: id, FailedOnly: true})
	if err != nil || len(failed) != 1 {
		t.Fatalf("failed audits: %+v %v", failed, err)
	}
	if f, _, _ := e.a.Audits(ctx, archive.Principal{Role: archive.RoleAuditor}, archive.AuditFilter{Package: old, FailedOnly: true}); len(f) != 1 ||
		!strings.Contains(strings.Join(f[0].Failed, "\n"), "delete marker") {
		t.Fatalf("the older package's audit: %+v", f)
	}
	why := strings.Join(failed[0].Failed, "\n")
	if !strings.Contains(why, "存储版本") || !strings.Contains(why, "delete marker") || !strings.Contains(why, "version ") || !strings.Contains(why, p.Version) {
		t.Fatalf("the audit says: %s", why)
	}
	// Only the version check failed: the archived bytes are intact.
	for _, c := range failed[0].Checks {
		if c.Status == "fail" && c.Where != "存储版本" {
			t.Fatalf("another check failed: %+v", c)
		}
	}
}

// exampleCaseNo is the example case under another case number.
func exampleCaseNo(t *testing.T, c map[string]any, no string) map[string]any {
	t.Helper()
	out := map[string]any{}
	for k, v := range c {
		out[k] = v
	}
	out["case_no"] = no
	return out
}
