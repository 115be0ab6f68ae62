package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/storage"
	"github.com/dangan-archive/dangan/storage/index"
)

// ingestMany ingests n cases from 8 goroutines: a PDF, a JSON form (archived as XML with
// the original kept) and, every fifth case, an OFD whose fonts are not embedded (warnings).
func ingestMany(t *testing.T, a *Archive, n int) {
	t.Helper()
	pdf, _ := os.ReadFile("../examples/case-001/decision.pdf")
	form, _ := os.ReadFile("../examples/case-001/application-form.json")
	ofd, err := os.ReadFile("../../shared/corpus/ofd/helloworld.ofd")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	next := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c := benchCaseFor(fmt.Sprintf("MANY-%05d", i))
				c.Retention = []string{"D30", "D10", "Y"}[i%3]
				files := []Upload{{Part: "doc", FileName: "decision.pdf", Body: bytes.NewReader(pdf)},
					{Part: "form", FileName: "申请表.json", Body: bytes.NewReader(form)}}
				c.Documents = append(c.Documents, CaseDoc{File: "form", Title: "申请表", Kind: "申请表格"})
				if i%5 == 0 {
					files = append(files, Upload{Part: "ofd", FileName: "证照.ofd", Body: bytes.NewReader(ofd)})
					c.Documents = append(c.Documents, CaseDoc{File: "ofd", Title: "电子证照"})
				}
				k := 0
				_, err := a.Ingest(context.Background(), dept, c, func() (*Upload, error) {
					if k == len(files) {
						return nil, io.EOF
					}
					k++
					return &files[k-1], nil
				})
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
}

func snapshot(t *testing.T, db *index.DB) map[string]*index.Package {
	t.Helper()
	out := map[string]*index.Package{}
	if err := db.ForEachPackage(func(p *index.Package) error {
		full, err := db.Package(p.ID) // with its documents
		out[p.ID] = full
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// diffFields names the fields in which two records differ.
func diffFields(a, b *index.Package) []string {
	var out []string
	va, vb := reflect.ValueOf(*a), reflect.ValueOf(*b)
	for i := 0; i < va.NumField(); i++ {
		x, _ := json.Marshal(va.Field(i).Interface())
		y, _ := json.Marshal(vb.Field(i).Interface())
		if !bytes.Equal(x, y) {
			out = append(out, fmt.Sprintf("%s: %s ≠ %s", va.Type().Field(i).Name, trim(x), trim(y)))
		}
	}
	return out
}

func trim(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

func TestRebuildGivesTheSameRecords(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(Config{DataDir: dir, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ingestMany(t, a, 1000)
	before := snapshot(t, a.Index())
	checkStatistics(t, a, "after ingest")
	a.Close()
	if len(before) != 1000 {
		t.Fatalf("%d packages indexed", len(before))
	}
	warned, renditions := 0, 0
	for _, p := range before {
		for _, d := range p.Documents {
			if len(d.Warnings) > 0 {
				warned++
			}
			if len(d.Encoded) == 2 {
				renditions++
			}
		}
	}
	if warned == 0 || renditions == 0 {
		t.Fatalf("the records do not exercise warnings (%d) and renditions (%d)", warned, renditions)
	}
	if err := os.Remove(filepath.Join(dir, "index.db")); err != nil {
		t.Fatal(err)
	}
	a, err = Open(Config{DataDir: dir, Logger: quiet(), SkipReconcile: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rep, err := a.Reconcile(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Adopted) != 1000 || len(rep.MovedAside) != 0 || len(rep.DataLoss) != 0 {
		t.Fatalf("rebuild: adopted %d, moved aside %d, data loss %d", len(rep.Adopted), len(rep.MovedAside), len(rep.DataLoss))
	}
	after := snapshot(t, a.Index())
	bad := 0
	for id, p := range before {
		q, ok := after[id]
		if !ok {
			t.Errorf("package %s missing after the rebuild", id)
			continue
		}
		if d := diffFields(p, q); len(d) > 0 {
			if bad++; bad <= 3 {
				t.Errorf("package %s differs after the rebuild:\n  %s", id, strings.Join(d, "\n  "))
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d records differ", bad, len(before))
	}
	checkStatistics(t, a, "after the rebuild")
	// Numbering goes on where it was: the next case in a series takes the next number.
	res, err := a.Ingest(context.Background(), dept, benchCaseFor("AFTER-REBUILD"), oneDoc(t))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(res.Package.ArchivalCode, fmt.Sprintf("-%04d", 335)) { // 1000 cases over 3 series: D30 has 334
		t.Fatalf("archival code after the rebuild: %s", res.Package.ArchivalCode)
	}
}

func TestReconcileOrphansAndDataLoss(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(Config{DataDir: dir, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ingestMany(t, a, 3)
	recs := snapshot(t, a.Index())
	var victim, donor *index.Package
	for _, p := range recs {
		if victim == nil {
			victim = p
		} else {
			donor = p
		}
	}
	ctx := context.Background()
	// A package object nobody timestamped (a copy under a new id) and garbage.
	rc, info, _ := a.Store().Get(ctx, donor.Key)
	a.Store().Put(ctx, "packages/X/2025/0000000000000copy.eep", rc, info.Size, storage.PutOptions{})
	rc.Close()
	a.Store().Put(ctx, "packages/X/2025/0000000000000junk.eep", strings.NewReader("<not a package>"), -1, storage.PutOptions{})
	// And an indexed package whose object is gone.
	if err := a.Store().Delete(ctx, victim.Key); err != nil {
		t.Fatal(err)
	}
	a.Close()

	a, err = Open(Config{DataDir: dir, Logger: quiet(), SkipReconcile: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rep, err := a.Reconcile(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Adopted) != 0 || len(rep.MovedAside) != 2 || len(rep.DataLoss) != 1 || rep.DataLoss[0] != victim.Key {
		t.Fatalf("report %+v", rep)
	}
	for _, k := range []string{"orphans/packages/X/2025/0000000000000copy.eep", "orphans/packages/X/2025/0000000000000junk.eep"} {
		if _, err := a.Store().Stat(ctx, k); err != nil {
			t.Errorf("%s not moved aside: %v", k, err)
		}
	}
	if _, err := a.Store().Stat(ctx, "packages/X/2025/0000000000000junk.eep"); err == nil {
		t.Error("the junk object is still among the packages")
	}
	if n, _ := a.Index().Count(); n != 3 {
		t.Fatalf("%d packages indexed after reconciling", n)
	}
}

// Start-up reconciliation looks only at the package objects written since it last ran: an
// object left by a crash just now is moved aside at the next start, an old stray one is
// left for the full reconciliation (dangan index reconcile --full).
func TestStartupReconcilesFromTheLastMark(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(Config{DataDir: dir, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ingestMany(t, a, 30)
	a.Close()
	ctx := context.Background()
	st, err := storage.OpenFS(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	fresh := fmt.Sprintf("packages/X/2025/%013x%s.eep", time.Now().UnixMilli(), "aaaaaaaaaaaa")
	stale := "packages/X/2019/0000000000001bbbbbbbbbbbb.eep"
	for _, k := range []string{fresh, stale} {
		if _, err := st.Put(ctx, k, strings.NewReader("<not a package>"), -1, storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	a, err = Open(Config{DataDir: dir, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { a.Close() }()
	if _, err := st.Stat(ctx, "orphans/"+fresh); err != nil {
		t.Errorf("the object written since the last start was not moved aside: %v", err)
	}
	if _, err := st.Stat(ctx, stale); err != nil {
		t.Errorf("the start-up looked at an object older than its mark: %v", err)
	}
	rep, err := a.reconcileSince(ctx, time.Now(), time.Time{}, nil)
	if err != nil || rep.ObjectCount != 0 {
		t.Fatalf("a reconciliation since now looked at %d objects: %v", rep.ObjectCount, err)
	}
	full, err := a.Reconcile(ctx, nil)
	if err != nil || len(full.MovedAside) != 1 || full.MovedAside[0] != stale || full.ObjectCount < 30 {
		t.Fatalf("full reconciliation: %v %+v", err, full)
	}
	// After a clean shutdown the start looks at nothing written more than cleanMarkMargin
	// before it, however busy the archive was until then (a pinned clock says how long
	// before: the ids are made by the archive's clock).
	a.Close()
	c := &clock{t: time.Now()}
	if a, err = Open(Config{DataDir: dir, Logger: quiet(), Now: c.Now}); err != nil {
		t.Fatal(err)
	}
	ingestMany(t, a, 20)
	c.Add(cleanMarkMargin + time.Millisecond)
	a.Close()
	if a, err = Open(Config{DataDir: dir, Logger: quiet(), SkipReconcile: true}); err != nil {
		t.Fatal(err)
	}
	if rep, err := a.ReconcileAtStart(ctx); err != nil || rep.ObjectCount != 0 {
		t.Fatalf("the start after a clean shutdown looked at %d objects: %v", rep.ObjectCount, err)
	}
}
