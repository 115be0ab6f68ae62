package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/archive/eventlog"
)

// LogBenchResult is the final JSON line of `dangan bench log`.
type LogBenchResult struct {
	Events                uint64  `json:"events"`
	EventsPerS            float64 `json:"events_per_s"`
	Bundles               uint64  `json:"bundles"`
	CheckpointsDuring     uint64  `json:"checkpoints_during_appends"`
	InclusionProofs       int64   `json:"inclusion_proofs"`
	InclusionProofsPerS   float64 `json:"inclusion_proofs_per_s"`
	IngestedPackages      int     `json:"ingested_packages"`
	IngestPerS            float64 `json:"ingest_per_s"`
	Tokens                float64 `json:"tokens_during_ingest"`
	TokensPer1000         float64 `json:"tokens_per_1000_packages"`
	DurableWritesPerS     float64 `json:"raw_durable_writes_per_s"` // one file written, fsynced and linked at a time
	SM3MBPerSOneCore      float64 `json:"raw_sm3_mb_per_s_one_core"`
	EventsPerDurableWrite float64 `json:"events_per_durable_write"`
	Cores                 int     `json:"cores"`
}

func cmdBenchLog(args []string) error {
	fs := flag.NewFlagSet("bench log", flag.ExitOnError)
	seconds := fs.Float64("seconds", 5, "seconds of appends, and of proof requests")
	appenders := fs.Int("clients", 64, "concurrent appenders, and concurrent proof clients")
	cases := fs.Int("cases", 2000, "small cases ingested to count timestamp tokens")
	fs.Parse(args)
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	res, err := runBenchLog(bin, time.Duration(*seconds*float64(time.Second)), *appenders, *cases, os.Stderr)
	if err != nil {
		return err
	}
	return printResult(res)
}

func runBenchLog(bin string, d time.Duration, clients, cases int, progress io.Writer) (*LogBenchResult, error) {
	dir, err := os.MkdirTemp("", "dangan-bench-log-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	res := &LogBenchResult{Cores: runtime.NumCPU()}
	data := filepath.Join(dir, "data")

	// The machine's limits, in the same run: SM3 on one core, and durable writes.
	res.SM3MBPerSOneCore = sm3InMemory()
	if res.DurableWritesPerS, err = durableWrites(filepath.Join(dir, "raw"), time.Second); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "raw: SM3 %.0f MiB/s on one core; %.0f durable file writes/s\n", res.SM3MBPerSOneCore, res.DurableWritesPerS)

	// 1. Appends: concurrent appenders, each event durable before it returns, with the
	// checkpointer running every second as in service.
	a, err := archive.Open(archive.Config{DataDir: data, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NoConverters: true})
	if err != nil {
		return nil, err
	}
	if _, err := ensureAdminToken(a, data); err != nil {
		return nil, err
	}
	l := a.Log()
	st0 := l.Stats.Checkpoints.Load()
	var stop atomic.Bool
	var appendErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	var n atomic.Uint64
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				sum := sm3.Sum([]byte(fmt.Sprint(c, i)))
				_, err := l.Append(context.Background(), eventlog.Event{Type: eventlog.TypeAudit, Time: time.Now(), Actor: "auditor",
					Subject: fmt.Sprintf("bench-%d-%d", c, i), Digest: fmt.Sprintf("%x", sum), Attrs: map[string]string{"result": "pass"}})
				if err != nil {
					mu.Lock()
					appendErr = err
					mu.Unlock()
					return
				}
				n.Add(1)
			}
		}(c)
	}
	for time.Since(start) < d {
		time.Sleep(250 * time.Millisecond)
		fmt.Fprintf(progress, "\rappends: %d events", n.Load())
	}
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	if appendErr != nil {
		return nil, appendErr
	}
	res.Events, res.Bundles = n.Load(), l.Stats.Bundles.Load()
	res.EventsPerS = float64(res.Events) / elapsed.Seconds()
	res.CheckpointsDuring = l.Stats.Checkpoints.Load() - st0
	res.EventsPerDurableWrite = float64(res.Events) / float64(res.Bundles)
	fmt.Fprintf(progress, "\rappends: %d events in %.1fs = %.0f events/s, durable, in %d bundles (%.0f events each); %d checkpoints meanwhile\n",
		res.Events, elapsed.Seconds(), res.EventsPerS, res.Bundles, res.EventsPerDurableWrite, res.CheckpointsDuring)
	if _, err := l.Checkpoint(context.Background()); err != nil {
		return nil, err
	}
	size := l.Size()
	a.Close()

	// 2. Inclusion proofs over HTTP, from the server as an operator runs it.
	srv, err := startServer(bin, data, "--public-rate", "-1", "--converters", "off") // one address makes all the proof requests
	if err != nil {
		return nil, err
	}
	defer srv.Kill()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var proofs atomic.Int64
	var proofErr atomic.Value
	stop.Store(false)
	start = time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(c), 1))
			for !stop.Load() {
				url := srv.URL + "/api/v1/log/proof/inclusion?index=" + strconv.FormatUint(r.Uint64N(size), 10)
				resp, err := client.Get(url)
				if err != nil {
					proofErr.Store(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					proofErr.Store(fmt.Errorf("inclusion proof: HTTP %d", resp.StatusCode))
					return
				}
				proofs.Add(1)
			}
		}(c)
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	if e := proofErr.Load(); e != nil {
		return nil, e.(error)
	}
	res.InclusionProofs = proofs.Load()
	res.InclusionProofsPerS = float64(res.InclusionProofs) / time.Since(start).Seconds()
	fmt.Fprintf(progress, "inclusion proofs over HTTP: %d in %.1fs = %.0f/s (tree of %d events)\n", res.InclusionProofs, time.Since(start).Seconds(), res.InclusionProofsPerS, size)

	// 3. Timestamp tokens per 1,000 packages at the small-case ingest rate: everything the
	// TSA was asked while the cases went in and until the last one was checkpointed.
	tok, err := srv.Token(archive.RoleDepartment, BenchUSCC)
	if err != nil {
		return nil, err
	}
	before, err := metricValue(srv.URL, "dangan_log_timestamp_tokens_total")
	if err != nil {
		return nil, err
	}
	took, err := ingestSmallCases(srv, tok, "LOGBENCH", cases, 16, progress)
	if err != nil {
		return nil, err
	}
	time.Sleep(1500 * time.Millisecond) // the checkpoint that covers the last cases
	after, err := metricValue(srv.URL, "dangan_log_timestamp_tokens_total")
	if err != nil {
		return nil, err
	}
	res.IngestedPackages, res.IngestPerS = cases, float64(cases)/took.Seconds()
	res.Tokens = after - before
	res.TokensPer1000 = res.Tokens / float64(cases) * 1000
	fmt.Fprintf(progress, "\ringest: %d cases at %.0f/s; %.0f timestamp tokens = %.1f per 1,000 packages\n", cases, res.IngestPerS, res.Tokens, res.TokensPer1000)
	return res, nil
}

// metricValue reads one unlabelled metric from /metrics.
func metricValue(url, name string) (float64, error) {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// sm3InMemory is SM3 throughput of one goroutine over 32 MiB in memory: the median of five
// measurements, so that one noisy moment does not set the yardstick.
func sm3InMemory() float64 {
	buf := make([]byte, 1<<20)
	var runs []float64
	for r := 0; r < 5; r++ {
		h := sm3.New()
		start := time.Now()
		for i := 0; i < 32; i++ {
			h.Write(buf)
		}
		runs = append(runs, 32/time.Since(start).Seconds())
	}
	sort.Float64s(runs)
	return runs[2]
}

// durableWrites is how many small files one writer can make durable per second here: write,
// fsync, link into place, fsync the directory, as the filesystem store does for a bundle.
func durableWrites(dir string, d time.Duration) (float64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	dirF, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer dirF.Close()
	body := make([]byte, 300)
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		tmp := filepath.Join(dir, fmt.Sprintf(".tmp-%d", n))
		f, err := os.Create(tmp)
		if err != nil {
			return 0, err
		}
		f.Write(body)
		if err := f.Sync(); err != nil {
			return 0, err
		}
		f.Close()
		if err := os.Link(tmp, filepath.Join(dir, strconv.Itoa(n))); err != nil {
			return 0, err
		}
		os.Remove(tmp)
		if err := dirF.Sync(); err != nil {
			return 0, err
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
