package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dangan-archive/dangan/archive"
)

// AuditBenchResult is the final JSON line of `dangan bench audit`.
type AuditBenchResult struct {
	Packages         int     `json:"packages"`
	PackageMB        float64 `json:"package_mb"`
	AuditSeconds     float64 `json:"audit_seconds"`
	AuditMBPerS      float64 `json:"audit_mb_per_s"`
	SM3MBPerSOneCore float64 `json:"sm3_mb_per_s_one_core"`
	AuditVsSM3       float64 `json:"audit_vs_sm3"`
	Failures         int     `json:"failures"`
	ThrottleMBPerS   float64 `json:"throttle_mb_per_s,omitempty"`
	ThrottledMBPerS  float64 `json:"throttled_mb_per_s,omitempty"`
	CPUUtilisation   float64 `json:"cpu_utilisation"` // CPU time of the process during the audit / (wall time × cores)
	Cores            int     `json:"cores"`
}

// cpuProfile starts a CPU profile into $DANGAN_BENCH_CPUPROFILE when it is set; stop ends it.
func cpuProfile() (stop func(), err error) {
	path := os.Getenv("DANGAN_BENCH_CPUPROFILE")
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// cpuTime is the process's CPU time (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func cmdBenchAudit(args []string) error {
	fs := flag.NewFlagSet("bench audit", flag.ExitOnError)
	n := fs.Int("packages", 1000, "packages to ingest and audit")
	sizeKB := fs.Int("size-kb", 1024, "size of each case's documents in KiB: a scan (two thirds) and a born-digital PDF, with a JSON form")
	throttle := fs.Float64("throttle-mbps", 50, "also run a throttled audit at this rate (0: skip)")
	fs.Parse(args)
	res, err := runBenchAudit(*n, int64(*sizeKB)<<10, *throttle, os.Stderr)
	if err != nil {
		return err
	}
	return printResult(res)
}

func runBenchAudit(n int, size int64, throttleMBps float64, progress io.Writer) (*AuditBenchResult, error) {
	dir, err := os.MkdirTemp("", "dangan-bench-audit-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	a, err := archive.Open(archive.Config{DataDir: filepath.Join(dir, "data"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NoBackgroundAudit: true, NoConverters: true})
	if err != nil {
		return nil, err
	}
	defer a.Close()
	// A typical case: a scan (archived as a PDF, the JPEG kept), a born-digital PDF and a
	// JSON form.
	var pdf bytes.Buffer
	if err := samplePDF(&pdf, size/3); err != nil {
		return nil, err
	}
	scan := sampleJPEG(int(size * 2 / 3))
	form, _ := json.Marshal(map[string]any{"申请人": "张三", "经营场所": "清涧县宽州镇", "面积": 120.5})
	files := []struct {
		name string
		data []byte
	}{{"scan.jpg", scan}, {"doc.pdf", pdf.Bytes()}, {"form.json", form}}
	who := archive.Principal{Role: archive.RoleDepartment, Org: BenchUSCC}
	var next, done atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) || firstErr.Load() != nil {
					return
				}
				var meta archive.Case
				b, _ := json.Marshal(benchCase(fmt.Sprintf("AUDIT-%06d", i), []string{"scan.jpg", "doc.pdf", "form.json"}))
				json.Unmarshal(b, &meta)
				k := 0
				_, err := a.Ingest(context.Background(), who, &meta, func() (*archive.Upload, error) {
					if k == len(files) {
						return nil, io.EOF
					}
					f := files[k]
					k++
					return &archive.Upload{Part: f.name, FileName: f.name, Body: bytes.NewReader(f.data)}, nil
				})
				if err != nil {
					firstErr.Store(err)
					return
				}
				if d := done.Add(1); d%50 == 0 {
					fmt.Fprintf(progress, "\ringest: %d/%d packages", d, n)
				}
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return nil, e.(error)
	}
	fmt.Fprintln(progress)
	if _, err := a.Log().Checkpoint(context.Background()); err != nil {
		return nil, err
	}
	res := &AuditBenchResult{Packages: n, Cores: runtime.NumCPU(), SM3MBPerSOneCore: sm3InMemory()}
	stop, err := cpuProfile() // the audit's
	if err != nil {
		return nil, err
	}
	cpu0 := cpuTime()
	run, err := auditOnce(a, 0, progress)
	stop()
	cpuUsed := cpuTime() - cpu0
	if err != nil {
		return nil, err
	}
	res.AuditSeconds = run.Finished.Sub(run.Started).Seconds()
	res.PackageMB = float64(run.Bytes) / float64(run.Done) / (1 << 20)
	res.AuditMBPerS, res.Failures = run.MBPerS, run.Failures
	res.AuditVsSM3 = res.AuditMBPerS / res.SM3MBPerSOneCore
	res.CPUUtilisation = cpuUsed.Seconds() / (res.AuditSeconds + 0.2) / float64(runtime.NumCPU()) // +0.2: the progress poll
	fmt.Fprintf(progress, "audit: %d packages, %.0f MiB in %.1fs = %.0f MiB/s; SM3 on one core %.0f MiB/s (ratio %.2f); %d failures\n",
		run.Done, float64(run.Bytes)/(1<<20), res.AuditSeconds, res.AuditMBPerS, res.SM3MBPerSOneCore, res.AuditVsSM3, run.Failures)
	if throttleMBps > 0 {
		run, err := auditOnce(a, int64(throttleMBps*(1<<20)), progress)
		if err != nil {
			return nil, err
		}
		res.ThrottleMBPerS, res.ThrottledMBPerS = throttleMBps, run.MBPerS
		fmt.Fprintf(progress, "throttled to %.0f MiB/s: %.1f MiB/s\n", throttleMBps, run.MBPerS)
	}
	return res, nil
}

// auditOnce runs a full audit and waits for it, showing progress.
func auditOnce(a *archive.Archive, rate int64, progress io.Writer) (*archive.AuditRun, error) {
	who := archive.Principal{Role: archive.RoleArchive}
	if _, err := a.StartAudit(context.Background(), who, true, rate); err != nil {
		return nil, err
	}
	for {
		time.Sleep(200 * time.Millisecond)
		run, err := a.AuditRunStatus(who)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(progress, "\raudit: %d/%d packages, %.0f MiB/s", run.Done, run.Total, run.MBPerS)
		if !run.Running {
			fmt.Fprintln(progress)
			if run.Error != "" {
				return nil, fmt.Errorf("audit: %s", run.Error)
			}
			return run, nil
		}
	}
}
