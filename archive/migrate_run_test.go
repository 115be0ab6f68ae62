package archive

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/internal/testenv"
	"github.com/dangan-archive/dangan/storage"
	"github.com/dangan-archive/dangan/storage/index"
)

func keepJSONPolicy(t *testing.T) string { return testenv.PolicyWith(t, testenv.KeepJSON) }

// openWithPolicy opens the archive in dir under a format policy ("" the shipped one).
func openWithPolicy(t *testing.T, dir, policy string) *Archive {
	t.Helper()
	a, err := Open(Config{DataDir: dir, Logger: quiet(), NoBackgroundAudit: true, FormatPolicy: policy})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func jsonForm(n int) []byte {
	return fmt.Appendf(nil, `{"申请人":"张三","编号":%d,"事项":"食品经营许可证核发","材料":["营业执照","健康证明"]}`, n)
}

func oneJSON(data []byte) func() (*Upload, error) {
	sent := false
	return func() (*Upload, error) {
		if sent {
			return nil, io.EOF
		}
		sent = true
		return &Upload{Part: "doc", FileName: "form.json", Body: bytes.NewReader(data)}, nil
	}
}

// A migration over 1,000 packages after the policy changed from keeping JSON to making it
// XML: every package gains a current amended form that verifies in both layers, the
// originals stay byte for byte as they were, a run stopped part-way (and an amended object
// stored by a run that stopped before logging it) resumes without duplicates, the
// documents served are the new renditions with the originals beside them, the audit
// passes, the statistics equal a recount, and an index rebuilt from storage holds the
// current forms without touching the originals.
func TestMigrationRunAfterAPolicyChange(t *testing.T) {
	const n = 1000
	dir := t.TempDir()
	open := func(policy string) *Archive { return openWithPolicy(t, dir, policy) }
	ctx := context.Background()
	a := open(keepJSONPolicy(t))
	var wg sync.WaitGroup
	var failed atomic.Int32
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if _, err := a.Ingest(ctx, dept, benchCaseFor(fmt.Sprintf("MIG-%04d", i)), oneJSON(jsonForm(i))); err != nil {
					t.Error(err)
					failed.Add(1)
					return
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.FailNow()
	}
	type orig struct{ key, sm3 string }
	originals := map[string]orig{}
	a.index.ForEachPackage(func(p *index.Package) error {
		originals[p.ID] = orig{p.Key, p.PackageSM3}
		return nil
	})
	a.Close()

	a = open("") // the shipped policy: JSON is made into XML
	defer func() { a.Close() }()
	admin := Principal{Role: RoleAdmin, Name: "王档案"}
	plan, err := a.PlanMigration(ctx, admin, nil)
	if err != nil || len(plan.Groups) != 1 || plan.Groups[0].Documents != n || plan.Groups[0].Now.Target != "XML" {
		t.Fatalf("plan: %v %+v", err, plan)
	}
	if _, err := a.RunMigration(ctx, dept, MigrationOptions{}); err == nil {
		t.Fatal("a department ran a migration")
	}
	run, err := a.RunMigration(ctx, admin, MigrationOptions{Limit: 300})
	if err != nil || run.Total != n || run.Migrated != 300 || len(run.Failed) != 0 {
		t.Fatalf("the first, stopped run: %v %+v", err, run)
	}
	// Runs that stopped after storing an amended package: one before its event (the log and
	// the index know nothing of it), one after its event, before its index entry.
	var pending []*index.Package
	a.index.ForEachPackage(func(p *index.Package) error {
		if len(pending) < 2 && p.Layer == 0 {
			q, _ := a.index.Package(p.ID)
			pending = append(pending, q)
		}
		return nil
	})
	for i, p := range pending {
		cur, err := a.openVerified(ctx, p.Key, p.PackageSM3)
		if err != nil {
			t.Fatal(err)
		}
		key := amendedKey(p, 1)
		size, sum, err := a.writeAmended(ctx, admin, p, cur, 1, key, []int{0})
		cur.close()
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if _, err := a.elog.Append(ctx, eventlog.Event{Type: eventlog.TypeMigrated, Time: a.now(), Actor: admin.Person(), Subject: migrationSubject(p.ID, 1), Digest: sum,
				Attrs: map[string]string{"key": key, "size": fmt.Sprint(size), "layer": "1", "previous_sm3": p.PackageSM3}}); err != nil {
				t.Fatal(err)
			}
		}
	}

	var seen []int
	run, err = a.RunMigration(ctx, admin, MigrationOptions{Progress: func(r *MigrationRun) { seen = append(seen, r.Done) }})
	if err != nil || run.Total != n-300 || run.Migrated != n-300 || run.Resumed != 2 || run.Documents != n-300 || len(run.Failed) != 0 {
		t.Fatalf("the resumed run: %v %+v", err, run)
	}
	took := run.Finished.Sub(run.Started)
	t.Logf("the resumed run migrated %d packages in %s: %.0f packages a second, %.1f ms each, %d bytes written", run.Migrated, took.Round(time.Millisecond),
		float64(run.Migrated)/took.Seconds(), took.Seconds()*1000/float64(run.Migrated), run.Bytes)
	if len(seen) < n-300 || seen[len(seen)-1] != n-300 {
		t.Fatalf("progress reported %d times, last %v", len(seen), seen[len(seen)-1:])
	}
	if run, err := a.RunMigration(ctx, admin, MigrationOptions{}); err != nil || run.Total != 0 {
		t.Fatalf("a run after everything is migrated: %v %+v", err, run)
	}

	migrations := 0
	for i := uint64(0); i < a.elog.Size(); i += 1000 {
		es, err := a.elog.Entries(ctx, i, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if ev, err := eventlog.ParseEvent([]byte(e.Event)); err == nil && ev.Type == eventlog.TypeMigrated {
				migrations++
			}
		}
	}
	if migrations != n {
		t.Fatalf("%d migration events, want one a package (%d)", migrations, n)
	}
	objects := 0
	a.store.List(ctx, "packages/", func(storage.ObjectInfo) error { objects++; return nil })
	if objects != 2*n {
		t.Fatalf("%d package objects, want %d: each original and one amended form", objects, 2*n)
	}
	checked := 0
	err = a.index.ForEachPackage(func(c *index.Package) error {
		p, err := a.index.Package(c.ID)
		if err != nil {
			return err
		}
		o := originals[p.ID]
		if p.Layer != 1 || len(p.Prior) != 1 || p.Prior[0].Key != o.key || p.Prior[0].PackageSM3 != o.sm3 || p.Key != strings.TrimSuffix(o.key, ".eep")+".m1.eep" {
			return fmt.Errorf("package %s: layer %d, prior %+v, key %s", p.ID, p.Layer, p.Prior, p.Key)
		}
		if got := objectSM3(t, a, o.key); got != o.sm3 {
			return fmt.Errorf("package %s: the original's SM3 changed to %s", p.ID, got)
		}
		if _, err := a.elog.Find(eventlog.TypeMigrated, migrationSubject(p.ID, 1)); err != nil {
			return err
		}
		if _, err := a.elog.Find(eventlog.TypeMigrated, migrationSubject(p.ID, 2)); err == nil {
			return fmt.Errorf("package %s was migrated twice", p.ID)
		}
		d := p.Documents[0]
		if len(d.Encoded) != 2 || d.Encoded[0].MIME != "application/xml" || d.Target != "XML" || d.Encoded[1].MIME != "application/json" || !d.Encoded[1].Original {
			return fmt.Errorf("package %s documents: %+v", p.ID, p.Documents)
		}
		v, err := a.openVerified(ctx, p.Key, p.PackageSM3)
		if err != nil {
			return err
		}
		defer v.close()
		if !v.rep.Valid || len(v.rep.Layers) != 2 || !v.rep.Layers[0].Current || v.rep.Layers[0].Layer != "修改1" || v.rep.Layers[1].Layer != "修改0" ||
			!v.rep.Layers[0].Valid || !v.rep.Layers[1].Valid || v.rep.Layers[1].SignedSM3 != p.Prior[0].SignedSM3 {
			return fmt.Errorf("package %s: %+v", p.ID, v.rep.Layers)
		}
		checked++
		return nil
	})
	if err != nil || checked != n {
		t.Fatalf("%d checked: %v", checked, err)
	}

	// What is served: the XML rendition, the JSON original beside it, as archived.
	p, _ := a.index.PackageByCase(dept.Org, "MIG-0007")
	rc, _, err := a.OpenDocument(ctx, dept, p.ID, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	x, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Contains(x, []byte("食品经营许可证核发")) || !bytes.HasPrefix(bytes.TrimSpace(x), []byte("<")) {
		t.Fatalf("the current rendition: %q", x)
	}
	rc, _, err = a.OpenDocument(ctx, dept, p.ID, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	j, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(j, jsonForm(7)) {
		t.Fatalf("the original: %q", j)
	}
	// The evidence proves the current form; the audit checks both forms.
	ev, err := a.Evidence(ctx, dept, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	rcv, info, _ := a.store.Get(ctx, p.Key)
	body, _ := io.ReadAll(rcv)
	rcv.Close()
	rep, err := Verify(bytes.NewReader(body), info.Size, VerifyOptions{Roots: a.Trust(), Evidence: ev, Now: a.now})
	if err != nil || !rep.Valid {
		t.Fatalf("the current form with its evidence: %v %+v", err, rep)
	}
	res := a.newAuditor(0).auditPackage(ctx, p)
	if !res.OK || !strings.Contains(fmt.Sprint(res.Checks), "原封装包 修改0") || !strings.Contains(fmt.Sprint(res.Checks), "原封装包 电子签名") {
		t.Fatalf("audit of a migrated package: %+v", res)
	}
	checkStatistics(t, a, "after a migration")

	// The index lost: a rebuild from storage makes the amended forms current again and
	// leaves every original where it is.
	a.Close()
	os.Remove(filepath.Join(dir, "index.db"))
	a = open("")
	if _, err := a.Reconcile(ctx, nil); err != nil {
		t.Fatal(err)
	}
	objects = 0
	a.store.List(ctx, "packages/", func(storage.ObjectInfo) error { objects++; return nil })
	q, err := a.index.Package(p.ID)
	if err != nil || objects != 2*n || q.Layer != 1 || q.Key != p.Key || len(q.Prior) != 1 || q.Prior[0].Key != p.Prior[0].Key || q.Documents[0].Encoded[0].SM3 != p.Documents[0].Encoded[0].SM3 {
		t.Fatalf("after a rebuild (%d objects): %v %+v", objects, err, q)
	}
	count := 0
	a.index.ForEachPackage(func(p *index.Package) error {
		if p.Layer == 1 {
			count++
		}
		return nil
	})
	if count != n {
		t.Fatalf("%d packages in their amended form after a rebuild, want %d", count, n)
	}
}

// A document whose new rendition cannot be made (a policy that now sends JSON forms through
// Ghostscript, which cannot read them) leaves its package exactly as it was — no object, no
// event, the same record — and the run reports it with the reason and goes on to the next.
func TestMigrationLeavesAFailedPackageAsItWas(t *testing.T) {
	dir := t.TempDir()
	open := func(policy string) *Archive { return openWithPolicy(t, dir, policy) }
	ctx := context.Background()
	a := open(keepJSONPolicy(t))
	var ids []string
	for i := range 2 {
		r, err := a.Ingest(ctx, dept, benchCaseFor(fmt.Sprintf("MIGF-%d", i)), oneJSON(jsonForm(i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.Package.ID)
	}
	a.Close()
	a = open(testenv.PolicyWith(t, `"action": "pdfa", "tool": "ghostscript"`))
	defer a.Close()
	before := map[string]*index.Package{}
	for _, id := range ids {
		before[id], _ = a.index.Package(id)
	}
	run, err := a.RunMigration(ctx, Principal{Role: RoleArchive, Name: "王档案"}, MigrationOptions{})
	if err != nil || run.Total != 2 || run.Done != 2 || run.Migrated != 0 || len(run.Failed) != 2 {
		t.Fatalf("the run: %v %+v", err, run)
	}
	for i, f := range run.Failed {
		if f.Package != ids[i] || f.Document != 1 || !strings.Contains(f.Reason, "cannot be made") {
			t.Fatalf("the failure reported: %+v", f)
		}
		after, _ := a.index.Package(f.Package)
		b := before[f.Package]
		if after.Layer != 0 || after.Key != b.Key || after.PackageSM3 != b.PackageSM3 || len(after.Prior) != 0 || after.Documents[0].Encoded[0].SM3 != b.Documents[0].Encoded[0].SM3 {
			t.Fatalf("the failed package changed: %+v", after)
		}
		if _, err := a.store.Stat(ctx, amendedKey(b, 1)); err == nil {
			t.Fatal("an amended object was stored for a failed package")
		}
		if _, err := a.elog.Find(eventlog.TypeMigrated, migrationSubject(f.Package, 1)); err == nil {
			t.Fatal("a migration event was logged for a failed package")
		}
	}
}
