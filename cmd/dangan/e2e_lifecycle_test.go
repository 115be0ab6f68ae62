package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/signing"
	"github.com/dangan-archive/dangan/storage/index"
)

// countyProxy stands between the department's archive and the county archive: it forwards
// to wherever the county archive runs now, slows the package uploads down so that the
// transfer can be interrupted, and corrupts one package in transit.
type countyProxy struct {
	target  atomic.Value // *url.URL
	corrupt string       // package id whose upload is altered
	delay   time.Duration
	puts    atomic.Int64
}

func (p *countyProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/packages/") {
		p.puts.Add(1)
		time.Sleep(p.delay)
		if strings.HasSuffix(r.URL.Path, "/"+p.corrupt) {
			body, _ := io.ReadAll(r.Body)
			if i := bytes.Index(body, []byte("<编码数据 ")); i > 0 {
				j := i + 300
				if body[j] == 'A' {
					body[j] = 'B'
				} else {
					body[j] = 'A'
				}
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
	}
	httputil.NewSingleHostReverseProxy(p.target.Load().(*url.URL)).ServeHTTP(w, r)
}

// lifecycleCase is one of the 200 cases: its retention and the year it finished.
type lifecycleCase struct {
	no        string
	retention string
	year      int
}

// TestTransferBetweenTwoArchives runs a department's archive and the county archive as two
// processes: 200 cases of mixed retention and years, the clock three years ahead, the
// schedule, the transfer of the due permanent packages with one altered at rest and one in
// transit, both processes killed mid-transfer and restarted, then the receipt, both indexes
// and both stores.
func TestTransferBetweenTwoArchives(t *testing.T) {
	root := t.TempDir()
	deptData, countyData := filepath.Join(root, "dept"), filepath.Join(root, "county")
	for _, d := range []string{deptData, countyData} {
		if out, err := exec.Command(binary, "init", "--data", d).CombinedOutput(); err != nil {
			t.Fatalf("init %s: %v\n%s", d, err, out)
		}
	}
	// Each trusts the other's root; the county archive issues the department's token.
	copyFile(t, filepath.Join(deptData, "pki", "root.pem"), filepath.Join(countyData, "pki", "extra-roots.pem"))
	copyFile(t, filepath.Join(countyData, "pki", "root.pem"), filepath.Join(deptData, "pki", "extra-roots.pem"))
	out, err := exec.Command(binary, "token", "create", "--data", countyData, "--role", "department", "--org", BenchUSCC, "--note", "dept transfers").Output()
	if err != nil {
		t.Fatal(err)
	}
	tokFile := filepath.Join(root, "county-token")
	os.WriteFile(tokFile, []byte(lastWord(string(out))), 0o600)

	const offset = "26280h" // three years ahead
	clock := time.Now().Add(26280 * time.Hour)
	county, err := startServer(binary, countyData, "--clock-offset", offset)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { county.Kill() }()
	proxy := &countyProxy{delay: 60 * time.Millisecond}
	u, _ := url.Parse(county.URL)
	proxy.target.Store(u)
	proxySrv := httptest.NewServer(proxy)
	defer proxySrv.Close()
	deptFlags := []string{"--clock-offset", offset, "--county-url", proxySrv.URL, "--county-token-file", tokFile}
	dept, err := startServer(binary, deptData, deptFlags...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { dept.Kill() }()
	tok, _ := dept.Token(archive.RoleDepartment, BenchUSCC)
	deptArchive, _ := dept.Token(archive.RoleArchive, "")

	// 200 cases: retention Y, D30, D10 in turn, finished 2016..2025.
	var cases []lifecycleCase
	for i := 0; i < 200; i++ {
		cases = append(cases, lifecycleCase{no: fmt.Sprintf("LC-%03d", i), retention: []string{"Y", "D30", "D10"}[i%3], year: 2016 + i%10})
	}
	ids := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	files, order := smallFiles(t)
	work := make(chan lifecycleCase)
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lc := range work {
				meta := benchCase(lc.no, order)
				meta["retention"] = lc.retention
				meta["accepted_at"] = fmt.Sprintf("%d-03-01T09:00:00+08:00", lc.year)
				meta["finished_at"] = fmt.Sprintf("%d-03-05T16:30:00+08:00", lc.year)
				status, body, err := postMultipart(http.DefaultClient, dept.URL, tok, meta, files, order)
				if err != nil || status != http.StatusCreated {
					t.Errorf("ingest %s: %d %v %s", lc.no, status, err, body)
					continue
				}
				var p struct{ ID string }
				json.Unmarshal(body, &p)
				mu.Lock()
				ids[lc.no] = p.ID
				mu.Unlock()
			}
		}()
	}
	for _, lc := range cases {
		work <- lc
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// The schedule at the shifted clock: Y formed in year y is due on 1 January y+6.
	due := map[string]bool{}
	for _, lc := range cases {
		if lc.retention == "Y" && !time.Date(lc.year+6, 1, 1, 0, 0, 0, 0, time.UTC).After(clock) {
			due[ids[lc.no]] = true
		}
	}
	// Paged by 25, the transfers due are exactly those, each once.
	listed := map[string]bool{}
	for cursor, pages := "", 0; ; pages++ {
		var sched archive.Schedule
		getJSON(t, dept.URL+"/api/v1/schedule?horizon_days=0&kind=transfer-due&limit=25&cursor="+cursor, deptArchive, &sched)
		for _, it := range sched.Items {
			if listed[it.Package] || !due[it.Package] {
				t.Fatalf("schedule page %d: %s listed twice or not due", pages, it.Package)
			}
			listed[it.Package] = true
		}
		if cursor = sched.Next[archive.DueTransfer]; cursor == "" {
			break
		}
	}
	if len(listed) != len(due) || len(due) < 40 {
		t.Fatalf("schedule: %d transfers due, expected %d", len(listed), len(due))
	}

	// One due package altered at rest, another to be altered in transit.
	var dueIDs []string
	for id := range due {
		dueIDs = append(dueIDs, id)
	}
	atRest, inTransit := dueIDs[0], dueIDs[1]
	proxy.corrupt = inTransit
	alterAtRest(t, deptData, atRest)

	// Start the transfer; kill the sender mid-way, restart it, then the receiver.
	var tr archive.Transfer
	postJSON(t, dept.URL+"/api/v1/transfers", tok, map[string]any{"due": true}, &tr, http.StatusAccepted)
	if tr.Total != len(due) {
		t.Fatalf("batch of %d, %d due", tr.Total, len(due))
	}
	waitFor(t, func() bool { return proxy.puts.Load() >= 10 })
	dept.Kill()
	if dept, err = startServer(binary, deptData, deptFlags...); err != nil {
		t.Fatal(err)
	}
	before := proxy.puts.Load()
	waitFor(t, func() bool { return proxy.puts.Load() >= before+10 })
	county.Kill()
	time.Sleep(300 * time.Millisecond) // the sender meets a dead receiver and backs off
	if county, err = startServer(binary, countyData, "--clock-offset", offset); err != nil {
		t.Fatal(err)
	}
	u, _ = url.Parse(county.URL)
	proxy.target.Store(u)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		getJSON(t, dept.URL+"/api/v1/transfers/"+tr.Batch, tok, &tr)
		if tr.Status != archive.TransferSending || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if tr.Status != archive.TransferDone {
		t.Fatalf("transfer %s: %s %s", tr.Batch, tr.Status, tr.Error)
	}

	// The receipt: signed by the county archive, two rejected with YJ-1-14 named.
	var rc archive.Receipt
	countyRoots := loadPool(t, filepath.Join(countyData, "pki", "root.pem"))
	if _, err := tr.Receipt.Verify(countyRoots, clock, &rc); err != nil {
		t.Fatalf("receipt: %v", err)
	}
	if rc.Accepted != len(due)-2 || rc.Rejected != 2 || len(tr.Accepted) != len(due)-2 {
		t.Fatalf("receipt: %d accepted, %d rejected (%v)", rc.Accepted, rc.Rejected, tr.Rejected)
	}
	for _, id := range []string{atRest, inTransit} {
		if r := strings.Join(tr.Rejected[id], " "); !strings.Contains(r, "YJ-1-14") {
			t.Fatalf("%s rejected for %q, want YJ-1-14", id, r)
		}
	}
	for _, c := range rc.Checks {
		if c.Status != "pass" {
			t.Fatalf("batch check %s: %+v", c.Code, c)
		}
	}
	dept.Kill()
	county.Kill()

	// Both indexes and both stores, read offline: every accepted package once at the county
	// archive, transferred at the department's; the rejected ones stay.
	countyIdx := openIndex(t, countyData)
	deptIdx := openIndex(t, deptData)
	eeps, _ := filepath.Glob(filepath.Join(countyData, "objects", "packages", "*", "*", "*.eep"))
	if len(eeps) != len(due)-2 {
		t.Fatalf("the county store holds %d packages, want %d", len(eeps), len(due)-2)
	}
	for id := range due {
		cp, cerr := countyIdx.Package(id)
		dp, derr := deptIdx.Package(id)
		if derr != nil {
			t.Fatal(derr)
		}
		if id == atRest || id == inTransit {
			if cerr == nil || dp.Transfer != nil || dp.State != "archived" {
				t.Fatalf("rejected %s: county %v, dept %+v", id, cerr, dp.Transfer)
			}
			continue
		}
		if cerr != nil || cp.PackageSM3 != dp.PackageSM3 || cp.Source != "transfer:"+tr.Batch {
			t.Fatalf("county record of %s: %v %+v", id, cerr, cp)
		}
		if dp.Transfer == nil || dp.State != "transferred" || dp.Transfer.Batch != tr.Batch {
			t.Fatalf("dept record of %s: %+v", id, dp.Transfer)
		}
	}
	n, bytes := 0, int64(0)
	countyIdx.ForEachPackage(func(p *index.Package) error { n++; bytes += p.Size; return nil })
	if n != len(due)-2 {
		t.Fatalf("the county index holds %d packages", n)
	}
	// The statistics on both sides moved with the transfer.
	cst, _ := countyIdx.Statistics(index.AllDepartments)
	if c := cst[index.DimTotal][""]; c.Count != int64(n) || c.Bytes != bytes || cst[index.DimState]["archived"].Count != int64(n) {
		t.Fatalf("county statistics %+v, want %d packages of %d bytes", cst, n, bytes)
	}
	dst, _ := deptIdx.Statistics(index.AllDepartments)
	if dst[index.DimState]["transferred"].Count != int64(len(due)-2) {
		t.Fatalf("department statistics: %d transferred, want %d", dst[index.DimState]["transferred"].Count, len(due)-2)
	}
}

func lastWord(s string) string {
	f := strings.Fields(s)
	return f[len(f)-1]
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func loadPool(t *testing.T, path string) *smx509.CertPool {
	t.Helper()
	pool, err := signing.LoadPool(path)
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

func getJSON(t *testing.T, url, tok string, v any) {
	t.Helper()
	status, body := get(t, url, tok)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatal(err)
	}
}

func postJSON(t *testing.T, url, tok string, in, out any, want int) {
	t.Helper()
	b, _ := json.Marshal(in)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, body)
	}
	if out != nil {
		json.Unmarshal(body, out)
	}
}

// waitFor polls cond for up to two minutes: tests wait for states and counts, and a busy
// machine only makes them wait longer.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alterAtRest flips one base64 character of a stored package's document.
func alterAtRest(t *testing.T, data, id string) {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(data, "objects", "packages", "*", "*", id+".eep"))
	if len(paths) != 1 {
		t.Fatalf("package %s: %v", id, paths)
	}
	b, _ := os.ReadFile(paths[0])
	i := bytes.Index(b, []byte("<编码数据 ")) + 300
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	os.Chmod(paths[0], 0o644)
	if err := os.WriteFile(paths[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func openIndex(t *testing.T, data string) *index.DB {
	t.Helper()
	db, err := index.Open(filepath.Join(data, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestDisposalAndAuditCLI drives appraisal, destruction, the register and the audit from the
// command line against a running server whose clock is ahead.
func TestDisposalAndAuditCLI(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	srv, err := startServer(binary, data, "--clock-offset", "26280h")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Kill() }()
	tok, _ := srv.Token(archive.RoleDepartment, BenchUSCC)
	files, order := smallFiles(t)
	var ids []string
	for i, year := range []int{2016, 2017, 2025} { // D10: kept until 2027, 2028, 2036
		meta := benchCase(fmt.Sprintf("DC-%d", i), order)
		meta["retention"] = "D10"
		meta["accepted_at"] = fmt.Sprintf("%d-03-01T09:00:00+08:00", year)
		meta["finished_at"] = fmt.Sprintf("%d-03-05T16:30:00+08:00", year)
		status, body, err := postMultipart(http.DefaultClient, srv.URL, tok, meta, files, order)
		if err != nil || status != http.StatusCreated {
			t.Fatalf("ingest: %d %v %s", status, err, body)
		}
		var p struct{ ID string }
		json.Unmarshal(body, &p)
		ids = append(ids, p.ID)
	}
	mk := func(note string) string { // an archivist's token, named
		body, _ := json.Marshal(map[string]string{"role": "archive", "note": note})
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/tokens", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+srv.Admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r struct{ Token string }
		json.NewDecoder(resp.Body).Decode(&r)
		return r.Token
	}
	alice, bob := mk("档案员甲"), mk("档案员乙")
	cli := func(tok string, args ...string) (int, string) {
		cmd := exec.Command(binary, append(args, "--server", srv.URL, "--token", tok)...)
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := cli(alice, "disposal", "candidates"); code != 0 || !strings.Contains(out, "2 candidates") || strings.Contains(out, ids[2]) {
		t.Fatalf("candidates: %d\n%s", code, out)
	}
	if code, out := cli(alice, "disposal", "decide", "--all", "--action", "destroy", "--reason", "保管期满，经鉴定无保存价值"); code != 0 || strings.Count(out, "pending-approval") != 2 {
		t.Fatalf("decide: %d\n%s", code, out)
	}
	if code, out := cli(alice, "disposal", "approve", "--all-pending"); code == 0 || !strings.Contains(out, "second archivist") {
		t.Fatalf("self-approval: %d\n%s", code, out)
	}
	if code, out := cli(bob, "disposal", "approve", "--all-pending", "--note", "同意"); code != 0 || strings.Count(out, "destroyed") != 2 {
		t.Fatalf("approve: %d\n%s", code, out)
	}
	if status, _ := get(t, srv.URL+"/api/v1/packages/"+ids[0]+"/eep", tok); status != http.StatusGone {
		t.Fatalf("a destroyed package: %d", status)
	}
	dir := t.TempDir()
	reg, regPDF := filepath.Join(dir, "register.xml"), filepath.Join(dir, "register.pdf")
	if code, out := cli(bob, "disposal", "register", "--out", reg); code != 0 {
		t.Fatalf("register: %s", out)
	}
	if code, out := cli(bob, "disposal", "register", "--pdf", "--out", regPDF); code != 0 {
		t.Fatalf("register pdf: %s", out)
	}
	if b, _ := os.ReadFile(regPDF); !bytes.HasPrefix(b, []byte("%PDF-")) {
		t.Fatal("the PDF register is not a PDF")
	}
	roots := filepath.Join(data, "pki", "root.pem")
	verifyReg := func(path string) (int, string) {
		cmd := exec.Command(binary, "verify", path, "--roots", roots)
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := verifyReg(reg); code != 0 || !strings.Contains(out, "2 entries") {
		t.Fatalf("register verify: %d %s", code, out)
	}
	b, _ := os.ReadFile(reg)
	os.WriteFile(reg, bytes.Replace(b, []byte("同意"), []byte("反对"), 1), 0o644)
	if b2, _ := os.ReadFile(reg); bytes.Equal(b, b2) {
		b2 = bytes.Replace(b, []byte("保管期满"), []byte("保管未满"), 1)
		os.WriteFile(reg, b2, 0o644)
	}
	if code, out := verifyReg(reg); code != 1 || !strings.Contains(out, "INVALID") {
		t.Fatalf("a changed register: %d %s", code, out)
	}

	// The audit: clean, then a flipped byte in the one package left is found and named.
	if code, out := cli(alice, "audit"); code != 0 || !strings.Contains(out, `"failures": 0`) {
		t.Fatalf("audit: %d\n%s", code, out)
	}
	srv.Kill()
	alterAtRest(t, data, ids[2])
	if srv, err = startServer(binary, data, "--clock-offset", "26280h"); err != nil {
		t.Fatal(err)
	}
	code, out := cli(alice, "audit")
	if code != 1 || !strings.Contains(out, "FAILED "+ids[2]) || !strings.Contains(out, "BC-1-14") {
		t.Fatalf("audit after a flipped byte: %d\n%s", code, out)
	}
	// The tombstones survive an index rebuild.
	srv.Kill()
	// The altered package no longer matches its ingest event: the rebuild sets it aside and
	// says so.
	if out, err := exec.Command(binary, "index", "rebuild", "--data", data).CombinedOutput(); err == nil || !strings.Contains(string(out), "0 indexed, 1 not adoptable") {
		t.Fatalf("rebuild: %v\n%s", err, out)
	}
	db := openIndex(t, data)
	for _, id := range ids[:2] {
		if p, err := db.Package(id); err != nil || p.Tombstone == nil {
			t.Fatalf("tombstone of %s after a rebuild: %v", id, err)
		}
	}
}

// TestBenchAuditRuns: dangan bench audit runs and its throttled run keeps to the rate.
func TestBenchAuditRuns(t *testing.T) {
	out, err := exec.Command(binary, "bench", "audit", "--packages", "24", "--size-kb", "300", "--throttle-mbps", "4").Output()
	if err != nil {
		t.Fatalf("bench audit: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res AuditBenchResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line: %v\n%s", err, out)
	}
	if res.Packages != 24 || res.Failures != 0 || res.AuditMBPerS <= 0 || res.SM3MBPerSOneCore <= 0 {
		t.Fatalf("result: %+v", res)
	}
	if res.ThrottledMBPerS > 4*1.15 || res.ThrottledMBPerS < 4*0.5 {
		t.Fatalf("throttled to 4 MiB/s, ran at %.2f", res.ThrottledMBPerS)
	}
}
