package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dangan-archive/dangan/api"
	"github.com/dangan-archive/dangan/archive"
)

// ScaleQuery is the latency of one kind of request, in milliseconds.
type ScaleQuery struct {
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
}

// ScaleMeasure is what `dangan bench scale` measures at one size.
type ScaleMeasure struct {
	Packages        int                   `json:"packages"`
	Queries         map[string]ScaleQuery `json:"queries"`
	StartupSeconds  float64               `json:"startup_s"`
	IndexBytesPer   float64               `json:"index_bytes_per_package"`
	SearchBytesPer  float64               `json:"search_bytes_per_package"`
	IngestPerS      float64               `json:"ingest_per_s"`       // near this size, in turns with an empty archive
	BuildIngestPerS float64               `json:"build_ingest_per_s"` // over the last packages of the build
	SearchIndexPerS float64               `json:"search_index_per_s"`
	RawFsyncPerS    float64               `json:"raw_fsync_per_s"` // this disk, measured in the same run
	IngestVsEmpty   float64               `json:"ingest_vs_empty"`
	// EmptyIngestPerS is an empty archive's rate, in turns with IngestPerS (compareRates);
	// FirstIngestPerS the rate of the first packages of this archive, when this run built
	// them (a cold process, at another time).
	EmptyIngestPerS  float64   `json:"empty_ingest_per_s"`
	FirstIngestPerS  float64   `json:"first_ingest_per_s,omitempty"`
	IngestTurns      []float64 `json:"ingest_turns_per_s,omitempty"`
	EmptyTurns       []float64 `json:"empty_turns_per_s,omitempty"`
	SecondsToBuild   float64   `json:"build_s"`
	SearchQueueAfter int       `json:"search_queue_after"`
}

// ScaleResult is the final JSON line: the measure at --measure-at (when given) and at
// --packages, and each query's p99 ratio between them.
type ScaleResult struct {
	At      *ScaleMeasure      `json:"at,omitempty"`
	Final   *ScaleMeasure      `json:"final"`
	Ratio   map[string]float64 `json:"p99_ratio,omitempty"`
	Cores   int                `json:"cores"`
	Workers int                `json:"workers"`
}

func cmdBenchScale(args []string) error {
	fs := flag.NewFlagSet("bench scale", flag.ExitOnError)
	n := fs.Int("packages", 100000, "packages the archive grows to")
	at := fs.Int("measure-at", 0, "also measure at this size on the way (0: only at --packages)")
	data := fs.String("data", "", "archive directory (kept, and resumed when it holds a bench archive); default a temporary one")
	workers := fs.Int("workers", 8, "concurrent ingests")
	queries := fs.Int("queries", 200, "requests of each kind measured")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the last packages' ingest (the rate near --packages) to this file")
	traceOut := fs.String("trace", "", "write an execution trace of the last packages' ingest to this file (go tool trace -pprof=syscall shows where it waits)")
	fs.Parse(args)
	res, err := runBenchScale(scaleOptions{Packages: *n, MeasureAt: *at, Data: *data, Workers: *workers, Queries: *queries, CPUProfile: *cpuProfile, Trace: *traceOut}, os.Stderr)
	if err != nil {
		return err
	}
	return printResult(res)
}

type scaleOptions struct {
	Packages, MeasureAt, Workers, Queries int
	Data, CPUProfile, Trace               string
}

// scaleDepartments are the benchmark's departments: valid USCCs, 20 of them.
func scaleDepartments() []string {
	var out []string
	for i := 0; len(out) < 20; i++ {
		first := fmt.Sprintf("11610830MB%07d", 1000000+i)
		c, err := archive.USCCCheckChar(first)
		if err == nil {
			out = append(out, first+string(c))
		}
	}
	return out
}

var scaleItems = []string{"食品经营许可", "建设工程规划许可", "户外广告设置许可", "个体工商户登记", "药品零售许可", "排污许可", "道路运输许可", "建筑施工许可",
	"公共场所卫生许可", "特种设备使用登记", "林木采伐许可", "取水许可", "烟草专卖零售许可", "娱乐场所经营许可", "出版物零售许可"}

// rareWord is the word that only cases 10k..10k+9 hold: two characters of a 200-character
// set, enough for 40,000 words (400,000 cases) before one repeats.
var rareChars = []rune("甲乙丙丁戊己庚辛壬癸子丑寅卯辰巳午未申酉戌亥金木水火土日月星辰风云雷电山川河海江湖溪泉松柏杨柳桃李杏梅兰竹菊荷莲桂枫槐榆樟楠梧桐橡栗枣梨柿柑橘橙柚葡萄蓝紫红黄绿青白黑灰褐朱丹碧翠琼瑶琳琅珊瑚玛瑙珍珠宝玉钻银铜铁锡铅锌镍钴钛钨钼锰铬钒铌钽锆铪镓铟铊锗锑铋钋砷硒碲硫磷硅硼碳氮氧氟氯溴碘氦氖氩氪氙氡鹰隼雕鹤鹭鸥燕雀莺鹊鸽鸠鹃鹂鸳鸯鹦鹉孔雀凤凰麒麟龙虎豹狮熊猿猴鹿麋獐麂兔狐狸狼豺貂獾")

func rareWord(k int) string {
	n := len(rareChars)
	return string([]rune{rareChars[(k/n)%n], rareChars[k%n]})
}

func scaleCase(i int, depts []string) (*archive.Case, []byte) {
	dept := depts[i%len(depts)]
	year := 2010 + i%15
	item := scaleItems[i%len(scaleItems)]
	fin := time.Date(year, time.Month(1+i%12), 1+i%28, 10, 0, 0, 0, time.UTC)
	c := &archive.Case{CaseNo: fmt.Sprintf("BENCH-%08d", i), Item: archive.Item{Code: fmt.Sprintf("ITEM%04d", i%len(scaleItems)), Name: item, Category: "行政许可"},
		Department: archive.Department{Name: "测试部门" + dept[10:], USCC: dept}, Applicant: archive.Applicant{Name: "申请人", Kind: "法人"},
		AcceptedAt: fin.Add(-72 * time.Hour), FinishedAt: fin, Result: archive.Result{Status: "办结", Decision: "准予许可", Opinion: "审核通过"},
		Retention: []string{"Y", "D30", "D10"}[i%3], Sharing: archive.Sharing{Scope: "政务共享"},
		Steps:     []archive.Step{{Name: "受理", Actor: "窗口", At: fin.Add(-72 * time.Hour), Opinion: "材料齐全"}, {Name: "审核", Actor: "科室", At: fin, Opinion: "审核通过 " + rareWord(i/10)}},
		Documents: []archive.CaseDoc{{File: "form", Title: item + "申请表", Kind: "申请表格", Main: true}}}
	form, _ := json.Marshal(map[string]any{"事项": item, "编号": i, "说明": "申请" + item + "，经营地址第" + fmt.Sprint(i%997) + "号"})
	return c, form
}

// benchState is kept in the bench archive so that a resumed run knows the rate of its
// first packages.
type benchState struct {
	FirstIngestPerS float64 `json:"empty_ingest_per_s"` // the name bench archives made before kept it under
}

// ingestRun is one run of ingests: cases from..to-1 of the bench's generator, from workers
// goroutines.
type ingestRun struct {
	a                    *archive.Archive
	depts                []string
	from, to             int
	workers, window      int    // window: how many of the first and of the last cases are timed
	cpuProfile, traceOut string // of the last window, when not empty
	progress             io.Writer
}

// run ingests the cases and returns the rates of the first and of the last window.
func (r ingestRun) run() (first, last float64, err error) {
	var next, done atomic.Int64
	next.Store(int64(r.from))
	var lastStart, firstEnd time.Time
	var profiling, tracing *os.File
	var mu sync.Mutex
	start := time.Now()
	var firstErr error
	var wg sync.WaitGroup
	stop := make(chan struct{})
	if r.progress != nil {
		every(5*time.Second, stop, func() {
			d := done.Load()
			fmt.Fprintf(r.progress, "bench scale: %d/%d packages, %.0f/s\n", int64(r.from)+d, r.to, float64(d)/time.Since(start).Seconds())
		})
	}
	for w := 0; w < r.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= r.to {
					return
				}
				if i == r.to-r.window {
					mu.Lock()
					lastStart = time.Now()
					if r.cpuProfile != "" {
						if f, err := os.Create(r.cpuProfile); err == nil && pprof.StartCPUProfile(f) == nil {
							profiling = f
						}
					}
					if r.traceOut != "" {
						if f, err := os.Create(r.traceOut); err == nil && trace.Start(f) == nil {
							tracing = f
						}
					}
					mu.Unlock()
				}
				c, form := scaleCase(i, r.depts)
				sent := false
				_, err := r.a.Ingest(context.Background(), archive.Principal{Role: archive.RoleDepartment, Org: c.Department.USCC}, c, func() (*archive.Upload, error) {
					if sent {
						return nil, io.EOF
					}
					sent = true
					return &archive.Upload{Part: "form", FileName: "form.json", Body: strings.NewReader(string(form))}, nil
				})
				if err != nil && !errors.Is(err, archive.ErrBusy) {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("ingest %d: %w", i, err)
					}
					mu.Unlock()
					return
				}
				if d := done.Add(1); int(d) == r.window {
					mu.Lock()
					firstEnd = time.Now()
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	if profiling != nil {
		pprof.StopCPUProfile()
		profiling.Close()
	}
	if tracing != nil {
		trace.Stop()
		tracing.Close()
	}
	if firstErr != nil {
		return 0, 0, firstErr
	}
	if !firstEnd.IsZero() {
		first = float64(r.window) / firstEnd.Sub(start).Seconds()
	}
	if lastStart.IsZero() {
		return first, float64(r.to-r.from) / time.Since(start).Seconds(), nil
	}
	return first, float64(r.window) / time.Since(lastStart).Seconds(), nil
}

// scaleTurns is how many turns of ingest each archive takes in compareRates.
const scaleTurns = 7

// settle waits until the archives' search indexes have nothing left to do (what the last
// turn queued indexed, and its merges done), as an archive is between bursts of ingest.
func settle(archives ...*archive.Archive) error {
	deadline := time.Now().Add(10 * time.Minute)
	quiet := 0
	for quiet < 5 { // a second without work: not the pause between two merges
		quiet++
		for _, a := range archives {
			if !a.SearchSettled() {
				quiet = 0
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the search indexes did not settle in 10 minutes")
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}

// compareRates measures ingest into the bench archive a, holding `from` packages, against
// ingest into an empty archive, by the same warm process and in turns: the machine's speed
// drifts by more than the difference measured (a virtual machine's neighbours; ±40 % between
// runs of a few seconds here), and turns see the same drift. Each archive takes `rounds`
// turns of `per` cases after the empty one has warmed up (its first 2,000 cases are slower:
// new directories, a small index file growing), each turn beginning when both archives'
// search indexes have settled, as an archive is between bursts of ingest. It returns each
// turn's rate.
func compareRates(a *archive.Archive, cfg archive.Config, depts []string, from, workers, rounds, per int) (nears, empties []float64, err error) {
	dir, err := os.MkdirTemp(filepath.Dir(cfg.DataDir), "dangan-bench-empty-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	cfg.DataDir = dir
	e, err := archive.Open(cfg)
	if err != nil {
		return nil, nil, err
	}
	defer e.Close()
	warm := 2000
	if _, _, err := (ingestRun{a: e, depts: depts, from: 0, to: warm, workers: workers, window: warm}).run(); err != nil {
		return nil, nil, err
	}
	for i := range rounds {
		rn := ingestRun{a: a, depts: depts, from: from + i*per, to: from + (i+1)*per, workers: workers, window: per}
		re := ingestRun{a: e, depts: depts, from: warm + i*per, to: warm + (i+1)*per, workers: workers, window: per}
		if err := settle(a, e); err != nil {
			return nil, nil, err
		}
		_, n, err := rn.run()
		if err != nil {
			return nil, nil, err
		}
		if err := settle(a, e); err != nil {
			return nil, nil, err
		}
		_, m, err := re.run()
		if err != nil {
			return nil, nil, err
		}
		nears, empties = append(nears, n), append(empties, m)
	}
	return nears, empties, nil
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	return s[len(s)/2]
}

func runBenchScale(o scaleOptions, progress io.Writer) (*ScaleResult, error) {
	if o.Workers <= 0 {
		o.Workers = 8
	}
	dir := o.Data
	if dir == "" {
		d, err := os.MkdirTemp("", "dangan-bench-scale-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := archive.Config{DataDir: dir, Logger: quiet, NoBackgroundAudit: true, MaxIngests: o.Workers * 2}
	a, err := archive.Open(cfg)
	if err != nil {
		return nil, err
	}
	defer func() { a.Close() }()
	depts := scaleDepartments()
	var st benchState
	statePath := filepath.Join(dir, "bench-scale.json")
	if b, err := os.ReadFile(statePath); err == nil {
		json.Unmarshal(b, &st)
	}
	res := &ScaleResult{Cores: runtime.NumCPU(), Workers: o.Workers}
	built := time.Now()
	// grow ingests up to `to` packages and returns the rate of the last ones.
	grow := func(to int) (near float64, err error) {
		have, err := a.Index().Count()
		if err != nil || have >= to {
			return 0, err
		}
		window := min(2000, max(to/10, 100))
		r := ingestRun{a: a, depts: depts, from: int(have), to: to, workers: o.Workers, window: window, progress: progress}
		if to == o.Packages {
			r.cpuProfile, r.traceOut = o.CPUProfile, o.Trace
		}
		first, near, err := r.run()
		if err != nil {
			return 0, err
		}
		if have == 0 && first > 0 {
			st.FirstIngestPerS = first
			b, _ := json.Marshal(st)
			os.WriteFile(statePath, b, 0o644)
		}
		return near, nil
	}
	measure := func(size int, rate float64) (*ScaleMeasure, error) {
		m := &ScaleMeasure{Packages: size, FirstIngestPerS: st.FirstIngestPerS, SecondsToBuild: time.Since(built).Seconds()}
		// The search index catches up before the ingest turns and before the queries.
		catchUp := func() (time.Duration, int, error) {
			t0 := time.Now()
			q0, _ := a.Index().SearchQueueLen()
			for {
				if _, queued, _ := a.SearchStatus(); queued == 0 {
					return time.Since(t0), q0, nil
				}
				if time.Since(t0) > 30*time.Minute {
					return 0, 0, fmt.Errorf("the search index did not catch up")
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
		took, q0, err := catchUp()
		if err != nil {
			return nil, err
		}
		if q0 > 0 {
			m.SearchIndexPerS = float64(q0) / took.Seconds()
		}
		// Ingest near this size against an empty archive's, in turns, now that this archive
		// is idle; the queries below see the few more packages.
		if rate > 0 {
			per := min(2000, max(size/10, 100))
			have, err := a.Index().Count()
			if err != nil {
				return nil, err
			}
			if m.IngestTurns, m.EmptyTurns, err = compareRates(a, cfg, depts, int(have), o.Workers, scaleTurns, per); err != nil {
				return nil, err
			}
			m.IngestPerS, m.EmptyIngestPerS = median(m.IngestTurns), median(m.EmptyTurns)
			m.IngestVsEmpty, m.BuildIngestPerS = m.IngestPerS/m.EmptyIngestPerS, rate
			size = int(have) + scaleTurns*per
			m.Packages = size
			if _, _, err := catchUp(); err != nil {
				return nil, err
			}
		}
		m.RawFsyncPerS = fsyncRate(dir)
		if m.Queries, err = scaleQueries(a, depts, size, o.Queries); err != nil {
			return nil, err
		}
		// Start-up: the archive opened again on the same directory.
		if err := a.Close(); err != nil {
			return nil, err
		}
		t := time.Now()
		if a, err = archive.Open(cfg); err != nil {
			return nil, err
		}
		m.StartupSeconds = time.Since(t).Seconds()
		if fi, err := os.Stat(filepath.Join(dir, "index.db")); err == nil {
			m.IndexBytesPer = float64(fi.Size()) / float64(size)
		}
		m.SearchBytesPer = float64(dirSize(filepath.Join(dir, "search"))) / float64(size)
		m.SearchQueueAfter, _ = a.Index().SearchQueueLen()
		return m, nil
	}
	if o.MeasureAt > 0 && o.MeasureAt < o.Packages {
		rate, err := grow(o.MeasureAt)
		if err != nil {
			return nil, err
		}
		if res.At, err = measure(o.MeasureAt, rate); err != nil {
			return nil, err
		}
	}
	rate, err := grow(o.Packages)
	if err != nil {
		return nil, err
	}
	if res.Final, err = measure(o.Packages, rate); err != nil {
		return nil, err
	}
	if res.At != nil {
		res.Ratio = map[string]float64{}
		for k, q := range res.Final.Queries {
			if b := res.At.Queries[k].P99; b > 0 {
				res.Ratio[k] = q.P99 / b
			}
		}
	}
	return res, nil
}

// scaleQueries measures each kind of request through the public API on loopback.
// scaleKind is one kind of request the bench measures: an API path with its client, or
// (c nil) a console page with a session.
type scaleKind struct {
	name    string
	c       *apiClient
	session *http.Cookie
	path    func() string
}

func scaleQueries(a *archive.Archive, depts []string, size, k int) (map[string]ScaleQuery, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: api.New(a, api.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PublicRate: -1})}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	archTok, err := a.CreateToken(archive.RoleArchive, "", "bench")
	if err != nil {
		return nil, err
	}
	dept := depts[0]
	deptTok, err := a.CreateToken(archive.RoleDepartment, dept, "bench")
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: time.Minute}
	arch, own := &apiClient{server: base, token: archTok, http: hc}, &apiClient{server: base, token: deptTok, http: hc}
	// A deep page of the department's list: 40 pages of 50 in, or the last full one in a
	// smaller archive (a short last page would cost less than a full one and flatter the
	// comparison). A page is full when another follows it.
	deep, cursor := "", ""
	for p := 0; p <= 40; p++ {
		var page struct{ Next string }
		if err := own.do(http.MethodGet, "/api/v1/packages?limit=50&cursor="+cursor, nil, &page); err != nil {
			return nil, err
		}
		if page.Next == "" {
			break
		}
		deep, cursor = cursor, page.Next
	}
	var list struct{ Packages []struct{ ID string } }
	if err := arch.do(http.MethodGet, "/api/v1/packages?limit=200", nil, &list); err != nil {
		return nil, err
	}
	var ids []string
	for _, p := range list.Packages {
		ids = append(ids, p.ID)
	}
	rng := rand.New(rand.NewPCG(1, uint64(size)))
	api := func(name string, c *apiClient, path func() string) scaleKind {
		return scaleKind{name: name, c: c, path: path}
	}
	kinds := []scaleKind{
		api("search_nothing", own, func() string { return "/api/v1/search?q=" + url.QueryEscape("无此词组") }),
		api("search_rare_word", arch, func() string { return "/api/v1/search?q=" + url.QueryEscape(rareWord(rng.IntN(max(size/10, 1)))) }),
		// A common word: an item's name, held by one case in fifteen.
		api("search_common_word_facets", arch, func() string {
			return "/api/v1/search?facets=true&q=" + url.QueryEscape(scaleItems[rng.IntN(len(scaleItems))])
		}),
		// The worst case: a word every case holds.
		api("search_word_in_every_case_facets", arch, func() string { return "/api/v1/search?facets=true&q=" + url.QueryEscape("审核通过") }),
		api("search_exact_case_no", arch, func() string { return "/api/v1/search?exact=" + fmt.Sprintf("BENCH-%08d", rng.IntN(size)) }),
		api("list_department_first_page", own, func() string { return "/api/v1/packages?limit=50" }),
		api("list_department_deep_page", own, func() string { return "/api/v1/packages?limit=50&cursor=" + deep }),
		api("package_status", arch, func() string { return "/api/v1/packages/" + ids[rng.IntN(len(ids))] }),
		api("schedule_department", arch, func() string { return "/api/v1/schedule?limit=50&department=" + dept }),
		api("candidates_department", arch, func() string { return "/api/v1/disposals/candidates?limit=50&department=" + dept }),
		api("statistics", own, func() string { return "/api/v1/statistics" }),
	}
	// The console's pages, as the archive's archivist and the administrator signed in to it
	// see them.
	noFollow := &http.Client{Timeout: time.Minute, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	login := func(name, role string) (*http.Cookie, error) {
		if _, err := a.CreateAccount(archive.Principal{Role: archive.RoleAdmin}, archive.Account{Name: name, Display: name, Role: role},
			"bench scale password"); err != nil && !errors.Is(err, archive.ErrState) {
			return nil, err
		}
		resp, err := noFollow.PostForm(base+"/console/login", url.Values{"name": {name}, "password": {"bench scale password"}})
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		for _, c := range resp.Cookies() {
			if c.Name == "dangan_session" {
				return c, nil
			}
		}
		return nil, fmt.Errorf("console login as %s: %s", name, resp.Status)
	}
	archivist, err := login("bench", archive.RoleArchive)
	if err != nil {
		return nil, err
	}
	admin, err := login("bench-admin", archive.RoleAdmin)
	if err != nil {
		return nil, err
	}
	page := func(session *http.Cookie, path string) error {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.AddCookie(session)
		resp, err := noFollow.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return nil
	}
	console := func(name string, as *http.Cookie, path func() string) scaleKind {
		return scaleKind{name: name, session: as, path: path}
	}
	fixed := func(path string) func() string { return func() string { return path } }
	kinds = append(kinds,
		console("console_home", archivist, fixed("/console/")),
		console("console_search_common_word", archivist, func() string { return "/console/search?q=" + url.QueryEscape(scaleItems[rng.IntN(len(scaleItems))]) }),
		console("console_record", archivist, func() string { return "/console/packages/" + ids[rng.IntN(len(ids))] }),
		console("console_disposal", archivist, fixed("/console/disposal")),
		console("console_transfers", archivist, fixed("/console/transfers")),
		console("console_audit", archivist, fixed("/console/audit")),
		console("console_certificates", archivist, fixed("/console/certificates")),
		console("console_log_proof", archivist, func() string { return "/console/log?index=" + fmt.Sprint(rng.IntN(max(size/2, 1))) }),
		console("console_admin_accounts", admin, fixed("/console/admin/accounts")),
		console("console_admin_tokens", admin, fixed("/console/admin/tokens")))
	out := map[string]ScaleQuery{}
	for _, kind := range kinds {
		var lat []float64
		began := time.Now()
		// k requests after a few that warm the caches, or as many as 30 seconds allow (at
		// least 20): a slow kind does not hold the run for an hour.
		warm := min(k/10, 5)
		for i := 0; i < warm+k && (i < warm+20 || time.Since(began) < 30*time.Second); i++ {
			t := time.Now()
			var body json.RawMessage // read whole, so the connection is kept
			if kind.c == nil {
				if err := page(kind.session, kind.path()); err != nil {
					return nil, fmt.Errorf("%s: %w", kind.name, err)
				}
			} else if err := kind.c.do(http.MethodGet, kind.path(), nil, &body); err != nil {
				return nil, fmt.Errorf("%s: %w", kind.name, err)
			}
			if i >= warm {
				lat = append(lat, float64(time.Since(t).Microseconds())/1000)
			}
		}
		slices.Sort(lat)
		out[kind.name] = ScaleQuery{P50: lat[len(lat)/2], P99: lat[min(len(lat)-1, len(lat)*99/100)]}
	}
	return out, nil
}

// fsyncRate is how many 4 KiB write+fsync rounds this disk does a second.
func fsyncRate(dir string) float64 {
	f, err := os.CreateTemp(dir, "fsync-*")
	if err != nil {
		return 0
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	t := time.Now()
	n := 0
	for time.Since(t) < time.Second {
		f.WriteAt(buf, int64(n%64)*4096)
		f.Sync()
		n++
	}
	return float64(n) / time.Since(t).Seconds()
}

func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
