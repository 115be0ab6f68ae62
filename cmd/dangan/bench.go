package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/signing/tlsconf"
)

// testServer is a dangan server run as a child process, as an operator would run it.
type testServer struct {
	cmd   *exec.Cmd
	URL   string
	Data  string
	Admin string
	out   *bytes.Buffer
	// Client reaches the server: over TLS (started with --tls-cert), it trusts the data
	// directory's TLS root and presents the archive's own client certificate.
	Client *http.Client
}

// started are the servers startServer ran, whose logs the tests read.
var (
	startedMu sync.Mutex
	started   []*testServer
)

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startServer runs `bin serve` on data and waits until it is healthy.
func startServer(bin, data string, extra ...string) (*testServer, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &testServer{URL: "http://" + addr, Data: data, out: &bytes.Buffer{}, Client: http.DefaultClient}
	if slices.Contains(extra, "--tls-cert") {
		s.URL = "https://" + addr
		if s.Client, err = tlsClientFor(data); err != nil {
			return nil, err
		}
	}
	startedMu.Lock()
	started = append(started, s)
	startedMu.Unlock()
	s.cmd = exec.Command(bin, append([]string{"serve", "--data", data, "--addr", addr}, extra...)...)
	s.cmd.Stdout = s.out
	s.cmd.Stderr = s.out
	if os.Getenv("DANGAN_BENCH_DEBUG_ADDR") != "" {
		s.cmd.Stderr = io.MultiWriter(s.out, os.Stderr)
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start server: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := s.Client.Get(s.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				// A restored instance has no token file: its admin token is the original one.
				if tok, err := os.ReadFile(filepath.Join(data, "admin-token")); err == nil {
					s.Admin = strings.TrimSpace(string(tok))
				}
				return s, nil
			}
		}
		if s.cmd.ProcessState != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Kill()
	return nil, fmt.Errorf("server did not become healthy:\n%s", s.out.String())
}

// tlsClientFor trusts data's development TLS root and presents its client certificate.
func tlsClientFor(data string) (*http.Client, error) {
	dev := tlsconf.DevFiles(filepath.Join(data, "pki"))
	roots, _, err := tlsconf.LoadPool(dev.Root)
	if err != nil {
		return nil, err
	}
	cert, err := tlsconf.NewReloader(dev.ClientCert, dev.ClientKey)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsconf.Client(roots, cert)
	tr.ForceAttemptHTTP2 = true
	return &http.Client{Transport: tr, Timeout: 5 * time.Minute}, nil
}

// Kill stops the server at once (SIGKILL), as a crash would.
func (s *testServer) Kill() {
	if s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
}

// PeakRSS is the server's peak resident set (VmHWM) in bytes.
func (s *testServer) PeakRSS() (int64, error) {
	return procStatus(strconv.Itoa(s.cmd.Process.Pid), "VmHWM:")
}

// procStatus reads a size field (VmRSS:, VmHWM:) of /proc/<pid>/status in bytes.
func procStatus(pid, key string) (int64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%s/status", key, pid)
}

// Token creates a token through the API.
func (s *testServer) Token(role, org string) (string, error) {
	body, _ := json.Marshal(map[string]string{"role": role, "org": org})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/v1/tokens", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.Admin)
	resp, err := s.Client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Token == "" {
		return "", fmt.Errorf("create token: HTTP %d %v", resp.StatusCode, err)
	}
	return out.Token, nil
}

// BenchUSCC is the department the benchmark and tests ingest for.
const BenchUSCC = "91610830MA6Y00001G"

func benchCase(caseNo string, docs []string) map[string]any {
	var list []map[string]any
	for i, d := range docs {
		list = append(list, map[string]any{"file": d, "title": "材料" + strconv.Itoa(i+1), "kind": "申请材料", "main": i == 0})
	}
	return map[string]any{
		"case_no":     caseNo,
		"item":        map[string]string{"code": "11610830MB1234567X4000112003", "name": "食品经营许可证核发", "category": "行政许可"},
		"department":  map[string]string{"name": "清涧县市场监督管理局", "uscc": BenchUSCC},
		"applicant":   map[string]string{"name": "张三", "kind": "个人", "id_type": "111", "id_number": "11010519491231002X"},
		"case_type":   "承诺件",
		"accepted_at": "2025-03-01T09:00:00+08:00",
		"finished_at": "2025-03-05T16:30:00+08:00",
		"result":      map[string]string{"status": "办结", "decision": "准予许可", "opinion": "符合条件"},
		"retention":   "D30",
		"sharing":     map[string]string{"scope": "政务共享", "conditions": "仅限市场监管部门"},
		"steps":       []map[string]string{{"name": "受理", "actor": "李四", "actor_id": "0123", "at": "2025-03-01T09:10:00+08:00", "opinion": "材料齐全"}},
		"documents":   list,
	}
}

// postMultipart sends a case with in-memory files (small benchmark cases).
func postMultipart(client *http.Client, url, token string, meta map[string]any, files map[string][]byte, order []string) (int, []byte, error) {
	req, err := multipartRequest(url, token, meta, files, order)
	if err != nil {
		return 0, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// multipartRequest is the POST /api/v1/cases of a case with in-memory files.
func multipartRequest(url, token string, meta map[string]any, files map[string][]byte, order []string) (*http.Request, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	cj, _ := json.Marshal(meta)
	fw, _ := mw.CreateFormField("case")
	fw.Write(cj)
	for _, name := range order {
		pw, _ := mw.CreateFormFile(name, name)
		pw.Write(files[name])
	}
	mw.Close()
	req, err := http.NewRequest(http.MethodPost, url+"/api/v1/cases", &buf)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	return req, nil
}

// sampleJPEG is a noisy scan-like JPEG of about size bytes.
func sampleJPEG(size int) []byte {
	r := rand.New(rand.NewPCG(7, 7))
	side := 64
	for {
		img := image.NewGray(image.Rect(0, 0, side, side))
		for i := range img.Pix {
			img.Pix[i] = uint8(r.UintN(256))
		}
		img.Set(0, 0, color.Gray{0})
		var b bytes.Buffer
		jpeg.Encode(&b, img, &jpeg.Options{Quality: 75})
		if b.Len() >= size || side > 2048 {
			return b.Bytes()
		}
		side += 16
	}
}

// samplePDF writes a valid one-page PDF whose content stream pads it to about size bytes.
func samplePDF(w io.Writer, size int64) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	var off int64
	var offs []int64
	wr := func(s string) { n, _ := bw.WriteString(s); off += int64(n) }
	wr("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	offs = append(offs, off)
	wr("1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n")
	offs = append(offs, off)
	wr("2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n")
	offs = append(offs, off)
	wr("3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>\nendobj\n")
	offs = append(offs, off)
	line := "% " + strings.Repeat("x", 1021) + "\n"
	n := max(size-600, 0) / int64(len(line))
	wr(fmt.Sprintf("4 0 obj\n<< /Length %d >>\nstream\n", n*int64(len(line))))
	for i := int64(0); i < n; i++ {
		wr(line)
	}
	wr("\nendstream\nendobj\n")
	x := off
	wr("xref\n0 5\n0000000000 65535 f \n")
	for _, o := range offs {
		wr(fmt.Sprintf("%010d 00000 n \n", o))
	}
	wr(fmt.Sprintf("trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", x))
	return bw.Flush()
}

// printResult prints a bench's result as its final JSON line.
func printResult(res any) error {
	line, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = fmt.Println(string(line))
	return err
}

func cmdBench(args []string) error {
	if len(args) > 0 && args[0] == "log" {
		return cmdBenchLog(args[1:])
	}
	if len(args) > 0 && args[0] == "audit" {
		return cmdBenchAudit(args[1:])
	}
	if len(args) > 0 && args[0] == "verify" {
		return cmdBenchVerify(args[1:])
	}
	if len(args) > 0 && args[0] == "convert" {
		return cmdBenchConvert(args[1:])
	}
	if len(args) > 0 && args[0] == "scale" {
		return cmdBenchScale(args[1:])
	}
	if len(args) == 0 || args[0] != "ingest" {
		return errors.New("usage: dangan bench ingest [--cases N] [--clients N] [--large-mb M] | dangan bench log [--seconds S] [--clients N] [--cases N] | dangan bench audit | dangan bench verify [--seconds S] [--clients N] | dangan bench convert [--docs N] [--workers N] | dangan bench scale [--packages N] [--measure-at M] [--data DIR]")
	}
	fs := flag.NewFlagSet("bench ingest", flag.ExitOnError)
	cases := fs.Int("cases", 1000, "small cases to ingest (three 20 KB documents each)")
	clients := fs.Int("clients", 16, "concurrent clients")
	largeMB := fs.Int("large-mb", 512, "size of the large case's PDF in MiB (0 skips it)")
	s3 := fs.String("s3-endpoint", "", "run the servers on this MinIO (credentials from DANGAN_S3_ACCESS_KEY/SECRET_KEY)")
	s3Bucket := fs.String("s3-bucket", "dangan-bench", "bucket prefix for --s3-endpoint (each server gets its own)")
	fs.Parse(args[1:])
	if *s3 != "" {
		benchStore = func(name string) []string {
			return []string{"--s3-endpoint", *s3, "--s3-bucket", *s3Bucket + "-" + name + fmt.Sprint(time.Now().Unix())}
		}
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	res, err := runBench(bin, *cases, *clients, int64(*largeMB)<<20, os.Stderr)
	if err != nil {
		return err
	}
	return printResult(res)
}

// BenchResult is the final JSON line of `dangan bench ingest`.
type BenchResult struct {
	SmallCases       int     `json:"small_cases"`
	SmallCasesPerS   float64 `json:"small_cases_per_s"`
	SmallDurable     int     `json:"small_cases_durable"`
	SmallPeakRSSMB   float64 `json:"small_peak_rss_mb"` // the small cases' server
	LargeMB          int64   `json:"large_mb"`
	LargeMBPerS      float64 `json:"large_mb_per_s"`
	PeakRSSMB        float64 `json:"peak_rss_mb"` // the large case's server, started fresh
	SM3MBPerSOneCore float64 `json:"sm3_mb_per_s_one_core"`
	LargeVsSM3       float64 `json:"large_vs_sm3"`
	Cores            int     `json:"cores"`
}

// benchStore returns the serve flags that put a bench server's objects somewhere other
// than its data directory (MinIO); nil: the local filesystem.
var benchStore = func(name string) []string { return nil }

func runBench(bin string, cases, clients int, largeSize int64, progress io.Writer) (*BenchResult, error) {
	dir, err := os.MkdirTemp("", "dangan-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	// The ingest pipeline itself: renditions by LibreOffice and Ghostscript are measured by
	// bench convert.
	extra := []string{"--converters", "off"}
	if d := os.Getenv("DANGAN_BENCH_DEBUG_ADDR"); d != "" {
		extra = append(extra, "--debug-addr", d, "--log-level", "debug")
	}
	srv, err := startServer(bin, filepath.Join(dir, "data"), append(extra, benchStore("small")...)...)
	if err != nil {
		return nil, err
	}
	defer srv.Kill()
	tok, err := srv.Token(archive.RoleDepartment, BenchUSCC)
	if err != nil {
		return nil, err
	}
	res := &BenchResult{SmallCases: cases, Cores: runtime.NumCPU()}

	elapsed, err := ingestSmallCases(srv, tok, "BENCH", cases, clients, progress)
	if err != nil {
		return nil, err
	}
	res.SmallCasesPerS = float64(cases) / elapsed.Seconds()
	if progress != nil {
		fmt.Fprintf(progress, "\rsmall cases: %d in %.1fs = %.0f cases/s\n", cases, elapsed.Seconds(), res.SmallCasesPerS)
	}
	if res.SmallDurable, err = countPackages(srv.URL, tok); err != nil {
		return nil, err
	}
	rss, err := srv.PeakRSS()
	if err != nil {
		return nil, err
	}
	res.SmallPeakRSSMB = float64(rss) / (1 << 20)
	if progress != nil {
		fmt.Fprintf(progress, "small cases: server peak RSS %.0f MiB\n", res.SmallPeakRSSMB)
	}
	srv.Kill()

	if largeSize > 0 {
		// A fresh server, so its peak RSS is the large case's alone.
		if srv, err = startServer(bin, filepath.Join(dir, "data-large"), append(extra, benchStore("large")...)...); err != nil {
			return nil, err
		}
		defer srv.Kill()
		if tok, err = srv.Token(archive.RoleDepartment, BenchUSCC); err != nil {
			return nil, err
		}
		caseDir := filepath.Join(dir, "large")
		os.MkdirAll(caseDir, 0o755)
		f, err := os.Create(filepath.Join(caseDir, "large.pdf"))
		if err != nil {
			return nil, err
		}
		if err := samplePDF(f, largeSize); err != nil {
			return nil, err
		}
		st, _ := f.Stat()
		f.Close()
		meta, _ := json.Marshal(benchCase("BENCH-LARGE", []string{"large.pdf"}))
		os.WriteFile(filepath.Join(caseDir, "case.json"), meta, 0o644)
		start := time.Now()
		status, body, err := postCase(&http.Client{}, srv.URL, tok, caseDir, progress)
		if err != nil {
			return nil, err
		}
		if status != http.StatusCreated {
			return nil, fmt.Errorf("large case: HTTP %d: %s", status, body)
		}
		d := time.Since(start)
		res.LargeMB = st.Size() >> 20
		res.LargeMBPerS = float64(st.Size()) / (1 << 20) / d.Seconds()
		res.SM3MBPerSOneCore, err = sm3Speed(filepath.Join(caseDir, "large.pdf"))
		if err != nil {
			return nil, err
		}
		res.LargeVsSM3 = res.LargeMBPerS / res.SM3MBPerSOneCore
		rss, err := srv.PeakRSS()
		if err != nil {
			return nil, err
		}
		res.PeakRSSMB = float64(rss) / (1 << 20)
		if progress != nil {
			fmt.Fprintf(progress, "large case: %d MiB in %.1fs = %.0f MiB/s; SM3 on one core %.0f MiB/s (ratio %.2f); server peak RSS %.0f MiB\n",
				res.LargeMB, d.Seconds(), res.LargeMBPerS, res.SM3MBPerSOneCore, res.LargeVsSM3, res.PeakRSSMB)
		}
	}
	return res, nil
}

// ingestSmallCases posts cases small cases (a 20 KB scan, a 20 KB PDF and a JSON form
// each) from clients concurrent clients and returns how long it took.
func ingestSmallCases(srv *testServer, tok, prefix string, cases, clients int, progress io.Writer) (time.Duration, error) {
	jpg := sampleJPEG(20 << 10)
	var pdf bytes.Buffer
	samplePDF(&pdf, 20<<10)
	form, _ := json.Marshal(map[string]any{"申请人": "张三", "经营场所": "清涧县宽州镇", "面积": 120.5, "材料": strings.Repeat("食品经营许可申请表。", 600)})
	files := map[string][]byte{"scan.jpg": jpg, "license.pdf": pdf.Bytes(), "form.json": form}
	order := []string{"scan.jpg", "license.pdf", "form.json"}
	var next atomic.Int64
	var ok atomic.Int64
	var firstErr error
	var mu sync.Mutex
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(cases) {
					return
				}
				status, body, err := postMultipart(client, srv.URL, tok, benchCase(fmt.Sprintf("%s-%06d", prefix, i), order), files, order)
				if err == nil && status != http.StatusCreated {
					err = fmt.Errorf("case %d: HTTP %d: %s", i, status, body)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				if n := ok.Add(1); n%100 == 0 && progress != nil {
					fmt.Fprintf(progress, "\rsmall cases: %d/%d", n, cases)
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start), firstErr
}

// sm3Speed measures SM3 throughput of one goroutine over a file's bytes (page-cached).
func sm3Speed(path string) (float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	h := sm3.New()
	buf := make([]byte, 1<<20)
	var n int64
	start := time.Now()
	for {
		m, err := f.Read(buf)
		h.Write(buf[:m])
		n += int64(m)
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	return float64(n) / (1 << 20) / time.Since(start).Seconds(), nil
}

func countPackages(url, tok string) (int, error) {
	n, after := 0, ""
	for {
		req, _ := http.NewRequest(http.MethodGet, url+"/api/v1/packages?limit=1000&after="+after, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		var out struct {
			Packages []struct{ ID string }
			Next     string
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil {
			return 0, err
		}
		n += len(out.Packages)
		if out.Next == "" {
			return n, nil
		}
		after = out.Next
	}
}
