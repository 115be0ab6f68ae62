package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dangan-archive/dangan/formats"
	"github.com/dangan-archive/dangan/formats/office"
	"github.com/dangan-archive/dangan/formats/pdfa"
)

// ConvertBenchResult is the final JSON line of `dangan bench convert`.
type ConvertBenchResult struct {
	Docs              int     `json:"docs"`
	DocsPerS          float64 `json:"docs_per_s"`
	OfficeDocs        int     `json:"office_docs"` // DOCX, XLSX, HTML
	OfficeDocsPerS    float64 `json:"office_docs_per_s"`
	OfficePerSPerCore float64 `json:"office_docs_per_s_per_core"`
	OfficeSecondsEach float64 `json:"office_worker_seconds_per_doc"` // wall time a worker spends per Office document
	ScanDocsPerS      float64 `json:"scan_docs_per_s"`
	PeakRSSMB         float64 `json:"peak_rss_mb"`        // dangan plus every LibreOffice worker, sampled
	DanganPeakRSSMB   float64 `json:"dangan_peak_rss_mb"` // this process's VmHWM
	// Growth: the peaks of the LibreOffice workers' RSS and of this process's RSS in the
	// first and the second half of the run (workers are replaced every 200 documents, so
	// their RSS is a sawtooth: equal peaks mean no growth).
	WorkersPeakFirstMB float64 `json:"workers_rss_peak_first_half_mb"`
	WorkersPeakLastMB  float64 `json:"workers_rss_peak_second_half_mb"`
	DanganPeakFirstMB  float64 `json:"dangan_rss_peak_first_half_mb"`
	DanganPeakLastMB   float64 `json:"dangan_rss_peak_second_half_mb"`
	WorkersReplaced    int64   `json:"workers_replaced"`   // for timeouts, memory or crashes (recycling aside)
	ColdSofficeSeconds float64 `json:"raw_cold_soffice_s"` // one 'soffice --convert-to pdf' of the DOCX, for comparison
	Workers            int     `json:"workers"`
	Cores              int     `json:"cores"`
	LibreOffice        string  `json:"libreoffice"`
	Ghostscript        string  `json:"ghostscript"`
}

func cmdBenchConvert(args []string) error {
	fs := flag.NewFlagSet("bench convert", flag.ExitOnError)
	docs := fs.Int("docs", 1000, "documents to convert: DOCX, XLSX, HTML and scans in turn")
	workers := fs.Int("workers", runtime.NumCPU(), "LibreOffice workers")
	fs.Parse(args)
	res, err := runBenchConvert(*docs, *workers, os.Stderr)
	if err != nil {
		return err
	}
	return printResult(res)
}

func runBenchConvert(n, workers int, progress io.Writer) (*ConvertBenchResult, error) {
	dir, err := os.MkdirTemp("", "dangan-bench-convert-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	gs, err := pdfa.Find()
	if err != nil {
		return nil, err
	}
	pool, err := office.NewPool(office.Config{Workers: workers, Dir: filepath.Join(dir, "office")})
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	res := &ConvertBenchResult{Workers: workers, Cores: runtime.NumCPU(), LibreOffice: pool.Version(), Ghostscript: gs.Version()}

	// The inputs: a DOCX and an XLSX written by LibreOffice from Chinese text, an HTML
	// export, a scan.
	const text = "某县市场监督管理局行政许可决定书：经审查，申请人提交的材料齐全、符合法定形式，准予许可。"
	var body strings.Builder
	for i := range 40 {
		fmt.Fprintf(&body, "第%d条 %s\n", i+1, text)
	}
	os.WriteFile(filepath.Join(dir, "decision.txt"), []byte(body.String()), 0o644)
	var csv strings.Builder
	csv.WriteString("序号,事项,申请人,结果\n")
	for i := range 200 {
		fmt.Fprintf(&csv, "%d,食品经营许可,申请人%d,准予许可\n", i+1, i+1)
	}
	os.WriteFile(filepath.Join(dir, "table.csv"), []byte(csv.String()), 0o644)
	soffice, err := exec.LookPath("soffice")
	if err != nil {
		return nil, office.ErrUnavailable
	}
	cold := func(src, to, filter string) error {
		cmd := exec.Command(soffice, "--headless", "-env:UserInstallation=file://"+filepath.Join(dir, "cold"), "--infilter="+filter, "--convert-to", to, "--outdir", dir, filepath.Join(dir, src))
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("soffice --convert-to %s: %v: %s", to, err, out)
		}
		return nil
	}
	if err := cold("decision.txt", "docx", "Text (encoded):UTF8,LF,,,"); err != nil {
		return nil, err
	}
	if err := cold("table.csv", "xlsx", "CSV:44,34,76,1"); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := cold("decision.docx", "pdf", "MS Word 2007 XML"); err != nil {
		return nil, err
	}
	res.ColdSofficeSeconds = time.Since(start).Seconds()
	html := "<html><head><meta charset=\"utf-8\"></head><body><h1>办件页面</h1>" + strings.Repeat("<p>"+text+"</p>", 30) + "</body></html>"
	inputs := []struct{ name string }{{"decision.docx"}, {"table.xlsx"}, {"page.html"}, {"scan.jpg"}}
	data := map[string][]byte{"page.html": []byte(html), "scan.jpg": sampleJPEG(200 << 10)}
	for _, in := range inputs[:2] {
		if data[in.name], err = os.ReadFile(filepath.Join(dir, in.name)); err != nil {
			return nil, err
		}
	}
	tools := &formats.Tools{Policy: formats.DefaultPolicy(), Office: pool, PDFA: gs, WorkDir: dir}

	var peak atomic.Int64
	var workerPeak, selfPeak [2]int64 // first half, second half
	sample := func(done int) {
		var w int64
		for _, pid := range pool.Pids() {
			w += office.GroupRSS(pid)
		}
		self := selfRSS()
		if total := w + self; total > peak.Load() {
			peak.Store(total)
		}
		half := min(1, 2*done/max(1, n))
		workerPeak[half] = max(workerPeak[half], w)
		selfPeak[half] = max(selfPeak[half], self)
	}
	var done, office, scans atomic.Int64
	var officeTime atomic.Int64
	var wg sync.WaitGroup
	jobs := make(chan int)
	errc := make(chan error, 1)
	for range 2 * workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				in := inputs[i%len(inputs)].name
				b := data[in]
				sum := sm3.Sum(b)
				t0 := time.Now()
				p, err := formats.Prepare(context.Background(), bytes.NewReader(b), sum[:], in, formats.PrepareOptions{
					NewSink: func() (formats.Sink, error) { return &formats.MemSink{}, nil }, NewHash: sm3.New, Tools: tools, Title: "文档 " + in})
				if err == nil && (p.Conversion == nil || p.Conversion.Target != "PDF/A-2b") {
					err = fmt.Errorf("%s: no PDF/A-2b rendition", in)
				}
				if err != nil {
					select {
					case errc <- err:
					default:
					}
					continue
				}
				if in == "scan.jpg" {
					scans.Add(1)
				} else {
					office.Add(1)
					officeTime.Add(int64(time.Since(t0)))
				}
				if d := done.Add(1); d%50 == 0 {
					fmt.Fprintf(progress, "\rconverted %d/%d", d, n)
				}
			}
		}()
	}
	stopSampling := make(chan struct{})
	sampled := every(250*time.Millisecond, stopSampling, func() { sample(int(done.Load())) }) // memory, four times a second
	start = time.Now()
	for i := range n {
		select {
		case err := <-errc:
			close(jobs)
			wg.Wait()
			close(stopSampling)
			return nil, err
		case jobs <- i:
		}
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	close(stopSampling)
	<-sampled
	fmt.Fprintln(progress)
	select {
	case err := <-errc:
		return nil, err
	default:
	}
	res.Docs, res.OfficeDocs = int(done.Load()), int(office.Load())
	res.DocsPerS = float64(res.Docs) / elapsed
	res.OfficeDocsPerS = float64(res.OfficeDocs) / elapsed
	res.ScanDocsPerS = float64(scans.Load()) / elapsed
	res.OfficePerSPerCore = res.OfficeDocsPerS / float64(res.Cores)
	if res.OfficeDocs > 0 {
		res.OfficeSecondsEach = time.Duration(officeTime.Load()).Seconds() / float64(res.OfficeDocs)
	}
	res.PeakRSSMB = float64(peak.Load()) / (1 << 20)
	hwm, err := procStatus("self", "VmHWM:")
	if err != nil {
		return nil, err
	}
	res.DanganPeakRSSMB = float64(hwm) / (1 << 20)
	mb := func(b int64) float64 { return float64(b) / (1 << 20) }
	res.WorkersPeakFirstMB, res.WorkersPeakLastMB = mb(workerPeak[0]), mb(workerPeak[1])
	res.DanganPeakFirstMB, res.DanganPeakLastMB = mb(selfPeak[0]), mb(selfPeak[1])
	res.WorkersReplaced = pool.Replaced.Load()
	return res, nil
}

// selfRSS is this process's VmRSS, for the sampler (0 when unreadable: the final VmHWM
// read reports that).
func selfRSS() int64 {
	n, _ := procStatus("self", "VmRSS:")
	return n
}
