package eventlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"github.com/dangan-archive/dangan/signing"
	"github.com/dangan-archive/dangan/signing/merkle"
	"github.com/dangan-archive/dangan/storage"
)

// testLog is a log on a filesystem store with its own development PKI.
type testLog struct {
	*Log
	dir   string
	store *storage.FS
	pki   *signing.PKI
	cfg   Config
}

func newPKI(t testing.TB, name string) *signing.PKI {
	t.Helper()
	pki, _, err := signing.OpenDevPKI(filepath.Join(t.TempDir(), "pki"), nil, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pki
}

// trustAll is a pool with every PKI's roots.
func trustAll(pkis ...*signing.PKI) *smx509.CertPool {
	var roots []*smx509.Certificate
	for _, p := range pkis {
		roots = append(roots, p.Roots()...)
	}
	return signing.NewPool(roots...)
}

func openTestLog(t testing.TB, origin string, pki *signing.PKI, roots *smx509.CertPool) *testLog {
	t.Helper()
	dir := t.TempDir()
	st, err := storage.OpenFS(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Dir: dir, Store: st, Origin: origin, Signer: pki.Archive, Stamper: signing.NewTSA(pki.TSA),
		Roots: func() *smx509.CertPool { return roots }, Interval: -1}
	l, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tl := &testLog{Log: l, dir: dir, store: st, pki: pki, cfg: cfg}
	t.Cleanup(func() { tl.Close() })
	return tl
}

func (tl *testLog) reopen(t testing.TB) {
	t.Helper()
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := Open(tl.cfg)
	if err != nil {
		t.Fatal(err)
	}
	tl.Log = l
}

func ev(i int) Event {
	return Event{Type: TypeIngest, Time: time.Date(2026, 11, 22, 9, 0, 0, i, time.UTC), Actor: "department:91330100MA2B3C4D5E",
		Subject: fmt.Sprintf("pkg-%04d", i), Digest: fmt.Sprintf("%064x", i), Attrs: map[string]string{"size": fmt.Sprint(i * 100)}}
}

func appendN(t testing.TB, l *Log, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if _, err := l.Append(context.Background(), ev(i)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestEventCanonical(t *testing.T) {
	e := ev(1)
	e.Time = e.Time.In(time.FixedZone("CST", 8*3600))
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"ingest","time":"2026-11-22T09:00:00.000000001Z","actor":"department:91330100MA2B3C4D5E","subject":"pkg-0001","digest":"` +
		fmt.Sprintf("%064x", 1) + `","attrs":{"size":"100"}}`
	if string(b) != want {
		t.Fatalf("encoding\n got %s\nwant %s", b, want)
	}
	if _, err := ParseEvent(b); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		`{"type":"ingest", "time":"2026-11-22T09:00:00Z","subject":"x"}`,          // a space
		`{"time":"2026-11-22T09:00:00Z","type":"ingest","subject":"x"}`,           // field order
		`{"type":"ingest","time":"2026-11-22T17:00:00+08:00","subject":"x"}`,      // not UTC
		`{"type":"ingest","time":"2026-11-22T09:00:00Z","subject":"x","extra":1}`, // unknown field
		`{"type":"ingest","time":"2026-11-22T09:00:00Z","subject":""}`,            // no subject
	} {
		if _, err := ParseEvent([]byte(bad)); !errors.Is(err, ErrBadEvent) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestAppendProveVerify(t *testing.T) {
	pki := newPKI(t, "部门甲")
	roots := pki.Trust()
	l := openTestLog(t, "dangan/test-a", pki, roots)
	ctx := context.Background()
	// Concurrent appends are grouped and each gets its own index.
	var wg sync.WaitGroup
	idx := make([]uint64, 40)
	for g := 0; g < 40; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			i, err := l.Append(ctx, ev(g))
			if err != nil {
				t.Error(err)
			}
			idx[g] = i
		}(g)
	}
	wg.Wait()
	if l.Size() != 40 {
		t.Fatalf("size %d", l.Size())
	}
	seen := map[uint64]bool{}
	for g, i := range idx {
		if seen[i] {
			t.Fatalf("index %d handed out twice", i)
		}
		seen[i] = true
		es, err := l.Entries(ctx, i, 1)
		if err != nil || len(es) != 1 {
			t.Fatal(es, err)
		}
		want, _ := ev(g).Encode()
		if es[0].Event != string(want) {
			t.Fatalf("event %d is %s, want %s", i, es[0].Event, want)
		}
	}
	p, err := l.Prove(ctx, idx[7])
	if err != nil {
		t.Fatal(err)
	}
	res, err := VerifyProof(p, roots)
	if err != nil {
		t.Fatal(err)
	}
	if res.Event.Subject != "pkg-0007" || res.Time.IsZero() || res.Origin != "dangan/test-a" {
		t.Fatalf("result %+v", res)
	}
	// Untrusted roots: the checkpoint's signer is refused.
	if _, err := VerifyProof(p, newPKI(t, "other").Trust()); !errors.Is(err, ErrCheckpointToken) && !errors.Is(err, ErrCheckpointSigner) {
		t.Fatalf("untrusted roots: %v", err)
	}

	// The state survives a restart, and a lost database is rebuilt from storage alone.
	root, _ := l.Root(40)
	l.reopen(t)
	if r, _ := l.Root(40); l.Size() != 40 || !bytes.Equal(r, root) {
		t.Fatal("state lost on reopen")
	}
	l.Close()
	if err := os.Remove(filepath.Join(l.dir, "log.db")); err != nil {
		t.Fatal(err)
	}
	l.reopen(t)
	if r, _ := l.Root(40); l.Size() != 41 && l.Size() != 40 || !bytes.Equal(r, root) {
		t.Fatalf("rebuilt: size %d", l.Size())
	}
	if l.Latest() == nil {
		t.Fatal("checkpoints not imported")
	}
	p2, err := l.Prove(ctx, idx[7])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyProof(p2, roots); err != nil {
		t.Fatal(err)
	}
	if j, err := l.IndexOfLeaf(merkle.SM3.LeafHash([]byte(p2.Links[0].Event))); err != nil || j != idx[7] {
		t.Fatalf("leaf lookup: %d %v", j, err)
	}
}

// A bundle stored before a crash kept it from the database is replayed, at open or at the
// next append: an acknowledged or stored event is never lost or overwritten.
func TestReplayAfterCrash(t *testing.T) {
	pki := newPKI(t, "部门甲")
	l := openTestLog(t, "dangan/test-a", pki, pki.Trust())
	appendN(t, l.Log, 0, 5)
	extra, _ := ev(5).Encode()
	put := func(start uint64, lines ...[]byte) {
		body := append(bytes.Join(lines, []byte("\n")), '\n')
		if _, err := l.store.Put(context.Background(), entriesKey(start), bytes.NewReader(body), int64(len(body)), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	put(5, extra)
	// The next append finds the stored bundle, replays it and writes after it.
	i, err := l.Append(context.Background(), ev(6))
	if err != nil || i != 6 || l.Size() != 7 {
		t.Fatalf("append after a stray bundle: index %d, size %d, %v", i, l.Size(), err)
	}
	extra2, _ := ev(7).Encode()
	put(7, extra2)
	l.reopen(t)
	if l.Size() != 8 {
		t.Fatalf("reopen replays: size %d", l.Size())
	}
	rep, err := Audit(context.Background(), l.store, pki.Trust(), nil)
	if err != nil || !rep.OK() || rep.Events != 8 {
		t.Fatalf("audit %+v %v", rep, err)
	}
}

// One token per checkpoint, whatever the number of events behind it.
func TestCheckpointBatching(t *testing.T) {
	pki := newPKI(t, "部门甲")
	dir := t.TempDir()
	st, _ := storage.OpenFS(filepath.Join(dir, "objects"))
	l, err := Open(Config{Dir: dir, Store: st, Origin: "dangan/batch", Signer: pki.Archive, Stamper: signing.NewTSA(pki.TSA),
		Roots: func() *smx509.CertPool { return pki.Trust() }, Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			appendN(t, l, g*10, 10)
		}(g)
	}
	wg.Wait()
	// Wait until a checkpoint covers the last events (a loaded machine delays ticks).
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if sc := l.Latest(); sc != nil {
			if c, _ := ParseCheckpoint(sc.Body); c.Size == l.Size() {
				break
			}
		}
	}
	// At most one checkpoint per interval while events arrive, plus the last one.
	if n, most := l.Stats.Tokens.Load(), uint64(time.Since(start)/(100*time.Millisecond))+1; n < 1 || n > most {
		t.Fatalf("%d tokens for 500 events in %v", n, time.Since(start))
	}
	// Idle: the last checkpoint's timestamp event waits for the next append, so no more.
	idle := l.Stats.Tokens.Load()
	time.Sleep(400 * time.Millisecond)
	if l.Stats.Tokens.Load() != idle {
		t.Fatal("an idle log keeps making checkpoints")
	}
}

// witnessedPair is a department's log and the county archive's, each with its own PKI,
// both trusting both roots; it returns the department's PKI and the roots too.
func witnessedPair(t *testing.T, deptOrigin, countyOrigin string) (dept, county *testLog, deptPKI *signing.PKI, roots *smx509.CertPool) {
	t.Helper()
	deptPKI, countyPKI := newPKI(t, "部门甲"), newPKI(t, "县档案馆")
	roots = trustAll(deptPKI, countyPKI)
	return openTestLog(t, deptOrigin, deptPKI, roots), openTestLog(t, countyOrigin, countyPKI, roots), deptPKI, roots
}

type logWitness struct{ l *Log }

func (w logWitness) Cosign(ctx context.Context, req *WitnessRequest) (*Cosignature, error) {
	return w.l.Cosign(ctx, req)
}

func TestWitnessAndFork(t *testing.T) {
	a, w, dept, roots := witnessedPair(t, "dangan/dept-a", "dangan/county")
	ctx := context.Background()
	appendN(t, a.Log, 0, 10)
	if _, err := a.WitnessWith(ctx, logWitness{w.Log}); err != nil {
		t.Fatal(err)
	}
	appendN(t, a.Log, 10, 7)
	sc, err := a.WitnessWith(ctx, logWitness{w.Log})
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Cosignatures) != 1 || sc.Cosignatures[0].Witness != "dangan/county" {
		t.Fatalf("cosignatures %+v", sc.Cosignatures)
	}
	// Evidence now carries the witness.
	p, err := a.Prove(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	res, err := VerifyProof(p, roots)
	if err != nil || len(res.Witnesses) != 1 {
		t.Fatalf("witnessed proof: %+v %v", res, err)
	}

	// The department rewrites its history: same origin and key, event 12 changed, more
	// appended. The witness refuses the next checkpoint.
	forked := openTestLog(t, "dangan/dept-a", dept, roots)
	appendN(t, forked.Log, 0, 12)
	changed := ev(12)
	changed.Digest = fmt.Sprintf("%064x", 999)
	if _, err := forked.Append(ctx, changed); err != nil {
		t.Fatal(err)
	}
	appendN(t, forked.Log, 13, 10)
	fsc, _ := forked.Checkpoint(ctx)
	c, _ := ParseCheckpoint(fsc.Body)
	wsc, _ := w.Witnessed("dangan/dept-a")
	wc, _ := ParseCheckpoint(wsc.Body)
	cons, _ := forked.ConsistencyProof(wc.Size, c.Size)
	_, err = w.Cosign(ctx, &WitnessRequest{Checkpoint: *fsc, From: wc.Size, Consistency: cons})
	if !errors.Is(err, ErrFork) {
		t.Fatalf("fork not detected: %v", err)
	}
	if w.Stats.Forks.Load() != 1 {
		t.Fatal("fork not counted")
	}
	// A proof from a size the witness did not cosign is asked again, not taken.
	_, err = w.Cosign(ctx, &WitnessRequest{Checkpoint: *fsc, From: 3})
	var se *SizeError
	if !errors.As(err, &se) || se.Size != wc.Size {
		t.Fatalf("wrong from: %v", err)
	}
	// A log does not witness itself.
	lsc := a.Latest()
	if _, err := a.Cosign(ctx, &WitnessRequest{Checkpoint: *lsc}); err == nil {
		t.Fatal("self-witnessing accepted")
	}
}

func TestAuditFindsTampering(t *testing.T) {
	pki := newPKI(t, "部门甲")
	roots := pki.Trust()
	l := openTestLog(t, "dangan/audit", pki, roots)
	ctx := context.Background()
	for b := 0; b < 4; b++ {
		appendN(t, l.Log, b*5, 5)
		if _, err := l.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := Audit(ctx, l.store, roots, nil)
	if err != nil || !rep.OK() || rep.Checkpoints != 4 {
		t.Fatalf("clean log: %+v %v", rep, err)
	}
	// The checkpoints' timestamp events are in the log too.
	if rep.Events <= 20 {
		t.Fatalf("events %d: the timestamp events are missing", rep.Events)
	}
	path := filepath.Join(l.store.Root(), entriesKey(5))
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Rewrite one event, keeping it canonical.
	tampered := bytes.Replace(orig, []byte(`"size":"500"`), []byte(`"size":"501"`), 1)
	if bytes.Equal(tampered, orig) {
		t.Fatal("test bundle lacks the event to rewrite")
	}
	os.Chmod(path, 0o644)
	if err := os.WriteFile(path, tampered, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, _ = Audit(ctx, l.store, roots, nil)
	if rep.OK() || !bytes.Contains([]byte(rep.Problems[0]), []byte("checkpoint")) {
		t.Fatalf("rewritten event not found: %+v", rep)
	}
	os.WriteFile(path, orig, 0o644)
	// Delete one bundle.
	os.Remove(path)
	rep, _ = Audit(ctx, l.store, roots, nil)
	if rep.OK() || !bytes.Contains([]byte(rep.Problems[0]), []byte("missing")) {
		t.Fatalf("deleted bundle not found: %+v", rep)
	}
}

func TestRenewalChain(t *testing.T) {
	pki := newPKI(t, "部门甲")
	roots := pki.Trust()
	l := openTestLog(t, "dangan/renew", pki, roots)
	ctx := context.Background()
	appendN(t, l.Log, 0, 3)
	p0, err := l.Prove(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l.Log, 3, 3)
	if _, err := l.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := l.Prove(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Links) != 2 {
		t.Fatalf("%d links after a renewal", len(p.Links))
	}
	if p.Links[0].Checkpoint.Body != p0.Links[0].Checkpoint.Body {
		t.Fatal("the first link changed")
	}
	res, err := VerifyProof(p, roots)
	if err != nil || res.Renewals != 1 {
		t.Fatalf("renewed proof: %+v %v", res, err)
	}
	// The renewal must log the first link's token; another token breaks the chain.
	bad := *p
	bad.Links = append([]Link(nil), p.Links...)
	bad.Links[0].Checkpoint.Token = p.Links[1].Checkpoint.Token
	if _, err := VerifyProof(&bad, roots); err == nil {
		t.Fatal("a chain over another token verified")
	}
}

// A bundle deleted from storage and the database lost: the log the archive then serves is
// another history, and the witness refuses it.
func TestWitnessSeesDeletedEvents(t *testing.T) {
	a, w, _, roots := witnessedPair(t, "dangan/dept-del", "dangan/county")
	ctx := context.Background()
	appendN(t, a.Log, 0, 12)
	if _, err := a.WitnessWith(ctx, logWitness{w.Log}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if err := os.Remove(filepath.Join(a.store.Root(), entriesKey(4))); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(a.dir, "log.db"))
	// The archive refuses to start on a log with events missing before a signed checkpoint.
	if _, err := Open(a.cfg); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("opened a log with a deleted bundle: %v", err)
	}
	// Covering the tracks: the checkpoints after the gap deleted too.
	cps, _ := filepath.Glob(filepath.Join(a.store.Root(), checkpointsPrefix, "*"))
	for _, cp := range cps {
		if size, _ := keyNumber(checkpointsPrefix+filepath.Base(cp), checkpointsPrefix); size > 4 {
			os.Remove(cp)
		}
	}
	l, err := Open(a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.Log = l
	if a.Size() != 4 {
		t.Fatalf("replay should stop at the gap: size %d", a.Size())
	}
	appendN(t, a.Log, 100, 3)
	if _, err := a.WitnessWith(ctx, logWitness{w.Log}); !errors.Is(err, ErrFork) {
		t.Fatalf("the witness accepted a history with events deleted: %v", err)
	}
	rep, _ := Audit(ctx, a.store, roots, nil)
	if rep.OK() {
		t.Fatal("audit found nothing")
	}
}
