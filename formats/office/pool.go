// Package office converts Office documents, HTML and text to PDF/A-2b with LibreOffice
// running headless: a bounded pool of workers, each a LibreOffice with its own user profile
// driven over UNO by a small Python program (worker.py). A conversion that runs past the
// timeout or the memory limit fails with a clear error, its worker is killed and a fresh
// one takes its place; workers are also replaced after a number of documents so memory
// cannot creep.
//
//	p, err := office.NewPool(office.Config{})      // ErrUnavailable: LibreOffice is not installed
//	defer p.Close()
//	err = p.Convert(ctx, "in.docx", "out.pdf", office.Options{Title: "审批表"})
package office

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

//go:embed worker.py
var workerPy []byte

// Errors callers decide on.
var (
	// ErrUnavailable: LibreOffice (or Python's UNO bridge) is not installed.
	ErrUnavailable = errors.New("LibreOffice is not installed: install the Debian packages libreoffice-writer-nogui, libreoffice-calc-nogui, python3-uno and a CJK font such as fonts-wqy-zenhei")
	// ErrTimeout: the conversion ran past the timeout; the worker was replaced.
	ErrTimeout = errors.New("the conversion took too long")
	// ErrMemory: LibreOffice used more memory than allowed; the worker was replaced.
	ErrMemory = errors.New("the conversion used too much memory")
	// ErrConvert: LibreOffice could not read or convert the document.
	ErrConvert = errors.New("LibreOffice could not convert the document")
)

// Config sizes the pool.
type Config struct {
	Workers int           // default: the number of CPUs
	Timeout time.Duration // per document; default 60 s
	MaxRSS  int64         // bytes per worker (LibreOffice and its helper); default 1 GiB
	Recycle int           // documents before a worker is replaced; default 200
	Soffice string        // default: soffice on PATH
	Python  string        // a python3 with the uno module; default: found
	Dir     string        // profiles and the helper; default: a temporary directory
}

// Options describe one conversion.
type Options struct {
	Title string // the PDF's title (Info and XMP), e.g. the document's title in the case
	// Kind is "txt" or "csv" for plain text and CSV (read as UTF-8); empty lets LibreOffice
	// detect the format.
	Kind string
}

// Pool is a set of LibreOffice workers.
type Pool struct {
	cfg     Config
	version string
	idle    chan *worker
	slots   chan struct{}
	seq     atomic.Int64
	closed  atomic.Bool
	mu      sync.Mutex
	all     map[*worker]bool
	ownDir  bool // the pool made cfg.Dir and removes it on Close
	// Replaced counts workers killed for a timeout, the memory limit or a crash.
	Replaced atomic.Int64
}

var versions sync.Map // soffice path → its version (asking costs half a second)

func sofficeVersion(soffice string) (string, error) {
	if v, ok := versions.Load(soffice); ok {
		return v.(string), nil
	}
	out, err := exec.Command(soffice, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%w (soffice --version: %v)", ErrUnavailable, err)
	}
	v := strings.TrimSpace(string(out))
	if f := strings.Fields(v); len(f) >= 2 {
		v = f[0] + " " + f[1]
	}
	versions.Store(soffice, v)
	return v, nil
}

var pythons sync.Map // python path → whether it imports uno

// Find locates soffice and a python3 with the uno module; it returns ErrUnavailable when
// either is missing.
func Find(cfg *Config) error {
	if cfg.Soffice == "" {
		p, err := exec.LookPath("soffice")
		if err != nil {
			return ErrUnavailable
		}
		cfg.Soffice = p
	}
	if cfg.Python == "" {
		// Debian's python3-uno is for the system Python, which may not be the first on PATH.
		for _, c := range []string{"/usr/bin/python3", "python3"} {
			p, err := exec.LookPath(c)
			if err != nil {
				continue
			}
			ok, seen := pythons.Load(p)
			if !seen {
				ok = exec.Command(p, "-c", "import uno").Run() == nil
				pythons.Store(p, ok)
			}
			if ok.(bool) {
				cfg.Python = p
				break
			}
		}
		if cfg.Python == "" {
			return ErrUnavailable
		}
	}
	return nil
}

// NewPool checks that LibreOffice is there and returns a pool; workers start on first use.
func NewPool(cfg Config) (*Pool, error) {
	if err := Find(&cfg); err != nil {
		return nil, err
	}
	if cfg.Workers <= 0 {
		cfg.Workers = max(1, runtime.GOMAXPROCS(0))
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.MaxRSS <= 0 {
		cfg.MaxRSS = 1 << 30
	}
	if cfg.Recycle <= 0 {
		cfg.Recycle = 200
	}
	ownDir := false
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "dangan-office-")
		if err != nil {
			return nil, fmt.Errorf("office: %w", err)
		}
		cfg.Dir, ownDir = d, true
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("office: %w", err)
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, "worker.py"), workerPy, 0o600); err != nil {
		return nil, fmt.Errorf("office: %w", err)
	}
	v, err := sofficeVersion(cfg.Soffice)
	if err != nil {
		return nil, err
	}
	p := &Pool{cfg: cfg, version: v, idle: make(chan *worker, cfg.Workers), slots: make(chan struct{}, cfg.Workers), all: map[*worker]bool{}, ownDir: ownDir}
	return p, nil
}

// Version is LibreOffice's name and version, as recorded with renditions.
func (p *Pool) Version() string { return p.version }

// Convert writes a PDF/A-2b rendition of the file in to out. It waits for a free worker
// as long as ctx allows.
func (p *Pool) Convert(ctx context.Context, in, out string, opts Options) error {
	if p.closed.Load() {
		return errors.New("office: the pool is closed")
	}
	in, err := filepath.Abs(in)
	if err != nil {
		return err
	}
	if out, err = filepath.Abs(out); err != nil {
		return err
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("office: waiting for a worker: %w", ctx.Err())
	}
	defer func() { <-p.slots }()
	var w *worker
	select {
	case w = <-p.idle:
	default:
		if w, err = p.start(); err != nil {
			return err
		}
	}
	err = w.convert(ctx, in, out, opts, p.cfg.Timeout, p.cfg.MaxRSS)
	switch {
	case err != nil && !errors.Is(err, ErrConvert):
		p.Replaced.Add(1)
		p.drop(w)
	case w.done >= p.cfg.Recycle:
		p.drop(w)
	default:
		p.idle <- w
	}
	return err
}

// Close stops every worker.
func (p *Pool) Close() error {
	p.closed.Store(true)
	p.mu.Lock()
	ws := make([]*worker, 0, len(p.all))
	for w := range p.all {
		ws = append(ws, w)
	}
	p.mu.Unlock()
	for _, w := range ws {
		p.drop(w)
	}
	if p.ownDir {
		return os.RemoveAll(p.cfg.Dir)
	}
	return nil
}

// Workers is the number of live workers.
func (p *Pool) Workers() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.all)
}

// Pids returns the process groups of the live workers (for measuring their memory).
func (p *Pool) Pids() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int
	for w := range p.all {
		out = append(out, w.cmd.Process.Pid)
	}
	return out
}

func (p *Pool) drop(w *worker) {
	w.kill()
	p.mu.Lock()
	delete(p.all, w)
	p.mu.Unlock()
	os.RemoveAll(w.profile)
}

type worker struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	answers *bufio.Scanner
	profile string
	done    int
}

func (p *Pool) start() (*worker, error) {
	n := p.seq.Add(1)
	profile := filepath.Join(p.cfg.Dir, "profile-"+strconv.FormatInt(n, 10))
	pipe := fmt.Sprintf("dangan-%d-%d", os.Getpid(), n)
	cmd := exec.Command(p.cfg.Python, filepath.Join(p.cfg.Dir, "worker.py"), p.cfg.Soffice, pipe, profile)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // one group: the helper and LibreOffice die together
	cmd.Env = append(os.Environ(), "HOME="+profile, "SAL_USE_VCLPLUGIN=svp")
	cmd.Stderr = io.Discard
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	w := &worker{cmd: cmd, stdin: stdin, answers: bufio.NewScanner(stdout), profile: profile}
	w.answers.Buffer(make([]byte, 64<<10), 1<<20)
	p.mu.Lock()
	p.all[w] = true
	p.mu.Unlock()
	ready := make(chan error, 1)
	go func() {
		var a struct {
			Ready bool   `json:"ready"`
			Error string `json:"error"`
		}
		if !w.answers.Scan() {
			ready <- fmt.Errorf("the worker ended before LibreOffice was ready: %v", w.answers.Err())
			return
		}
		if err := json.Unmarshal(w.answers.Bytes(), &a); err != nil || !a.Ready {
			ready <- fmt.Errorf("LibreOffice did not start: %s %v", a.Error, err)
			return
		}
		ready <- nil
	}()
	select {
	case err = <-ready:
	case <-time.After(90 * time.Second):
		err = errors.New("LibreOffice did not start within 90 s")
	}
	if err != nil {
		p.drop(w)
		return nil, fmt.Errorf("office: %w", err)
	}
	return w, nil
}

func (w *worker) kill() {
	if w.cmd.Process != nil {
		syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
		w.cmd.Wait()
	}
}

// convert runs one request, watching the time and the group's memory.
func (w *worker) convert(ctx context.Context, in, out string, opts Options, timeout time.Duration, maxRSS int64) error {
	req, _ := json.Marshal(map[string]string{"in": in, "out": out, "title": opts.Title, "kind": opts.Kind})
	if _, err := w.stdin.Write(append(req, '\n')); err != nil {
		return fmt.Errorf("office: the worker is gone: %w", err)
	}
	type result struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	got := make(chan error, 1)
	go func() {
		if !w.answers.Scan() {
			got <- fmt.Errorf("office: LibreOffice ended during the conversion (%v)", w.answers.Err())
			return
		}
		var r result
		if err := json.Unmarshal(w.answers.Bytes(), &r); err != nil {
			got <- fmt.Errorf("office: unreadable answer from the worker: %w", err)
			return
		}
		if !r.OK {
			got <- fmt.Errorf("%w: %s", ErrConvert, r.Error)
			return
		}
		got <- nil
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-got:
			w.done++
			return err
		case <-timer.C:
			w.kill()
			<-got
			return fmt.Errorf("%w: no result after %s; LibreOffice was stopped", ErrTimeout, timeout)
		case <-ctx.Done():
			w.kill()
			<-got
			return fmt.Errorf("office: %w", ctx.Err())
		case <-tick.C:
			if rss := GroupRSS(w.cmd.Process.Pid); rss > maxRSS {
				w.kill()
				<-got
				return fmt.Errorf("%w: %d MiB, the limit is %d MiB; LibreOffice was stopped", ErrMemory, rss>>20, maxRSS>>20)
			}
		}
	}
}

// GroupRSS is the resident memory of every process in process group pgid.
func GroupRSS(pgid int) int64 {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var total int64
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue // not a process
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command (which may hold spaces) start after the last ')'.
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 22 || f[2] != strconv.Itoa(pgid) {
			continue
		}
		pages, _ := strconv.ParseInt(f[21], 10, 64) // rss, in pages
		total += pages * int64(os.Getpagesize())
	}
	return total
}
