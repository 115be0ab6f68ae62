package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/formats/eep"
	"github.com/dangan-archive/dangan/signing"
	"github.com/dangan-archive/dangan/signing/tlsconf"
)

// cmdIngest posts a case folder (case.json and the files it lists) to a server.
func cmdIngest(args []string) error {
	fs := flag.NewFlagSet("ingest", flag.ExitOnError)
	server := fs.String("server", "http://127.0.0.1:8480", "dangan server URL")
	token := fs.String("token", os.Getenv("DANGAN_TOKEN"), "department token (or DANGAN_TOKEN)")
	tlsRoot := fs.String("tls-root", "", "for an https server: the root (PEM) its certificate chains to, e.g. its pki/tls-root.pem (default: the system's roots)")
	dir, rest := splitArg(args)
	fs.Parse(rest)
	if dir == "" && fs.NArg() > 0 {
		dir = fs.Arg(0)
	}
	if dir == "" {
		return errors.New("usage: dangan ingest CASEDIR --server URL --token TOKEN")
	}
	client := &http.Client{}
	if *tlsRoot != "" {
		roots, _, err := tlsconf.LoadPool(*tlsRoot)
		if err != nil {
			return fmt.Errorf("--tls-root: %w", err)
		}
		client.Transport = &http.Transport{TLSClientConfig: tlsconf.Client(roots, nil), ForceAttemptHTTP2: true}
	}
	status, body, err := postCase(client, *server, *token, dir, os.Stderr)
	if err != nil {
		return err
	}
	os.Stdout.Write(body)
	if status != http.StatusCreated && status != http.StatusOK {
		return fmt.Errorf("server answered %d", status)
	}
	return nil
}

// splitArg lets the positional argument come before the flags.
func splitArg(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

// caseFiles reads dir/case.json and returns its bytes and the document files it lists.
func caseFiles(dir string) ([]byte, []archive.CaseDoc, error) {
	meta, err := os.ReadFile(filepath.Join(dir, "case.json"))
	if err != nil {
		return nil, nil, fmt.Errorf("read case: %w", err)
	}
	var c struct {
		Documents []archive.CaseDoc `json:"documents"`
	}
	if err := json.Unmarshal(meta, &c); err != nil {
		return nil, nil, fmt.Errorf("%s/case.json: %w", dir, err)
	}
	return meta, c.Documents, nil
}

// postCase streams a multipart ingest request; progress goes to progress when not nil.
func postCase(client *http.Client, server, token, dir string, progress io.Writer) (int, []byte, error) {
	meta, docs, err := caseFiles(dir)
	if err != nil {
		return 0, nil, err
	}
	var total int64
	for _, d := range docs {
		st, err := os.Stat(filepath.Join(dir, d.File))
		if err != nil {
			return 0, nil, fmt.Errorf("document %s: %w", d.File, err)
		}
		total += st.Size()
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	var sent atomic.Int64
	go func() {
		err := func() error {
			cp, err := mw.CreateFormField("case")
			if err != nil {
				return err
			}
			if _, err := cp.Write(meta); err != nil {
				return err
			}
			for _, d := range docs {
				f, err := os.Open(filepath.Join(dir, d.File))
				if err != nil {
					return err
				}
				part, err := mw.CreateFormFile(d.File, d.File)
				if err != nil {
					f.Close()
					return err
				}
				_, err = io.Copy(part, &countingReader{r: f, n: &sent})
				f.Close()
				if err != nil {
					return err
				}
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	req, err := http.NewRequest(http.MethodPost, strings.TrimRight(server, "/")+"/api/v1/cases", pr)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	stop := make(chan struct{})
	if progress != nil {
		every(500*time.Millisecond, stop, func() {
			fmt.Fprintf(progress, "\ringest %s: %d/%d MiB sent", filepath.Base(dir), sent.Load()>>20, total>>20)
		})
	}
	resp, err := client.Do(req)
	close(stop)
	if err != nil {
		return 0, nil, fmt.Errorf("post case: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if progress != nil {
		fmt.Fprintf(progress, "\ringest %s: %d MiB sent, server answered %s\n", filepath.Base(dir), total>>20, resp.Status)
	}
	return resp.StatusCode, body, err
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// cmdVerify checks a package offline. Exit 0: every check passed; 1: a check failed; 2: the
// command could not run.
func cmdVerify(args []string) int {
	fs := flag.NewFlagSet("verify", flag.ExitOnError)
	roots := fs.String("roots", "", "PEM file of trusted root certificates (GET /api/v1/trust)")
	evidence := fs.String("evidence", "", "evidence file (GET /api/v1/packages/{id}/evidence)")
	asJSON := fs.Bool("json", false, "print the structured report as JSON")
	file, rest := splitArg(args)
	fs.Parse(rest)
	if file == "" && fs.NArg() > 0 {
		file = fs.Arg(0)
	}
	if file == "" {
		fmt.Fprintln(os.Stderr, "usage: dangan verify FILE.eep [--roots ROOTS.pem] [--evidence FILE] [--json]")
		return 2
	}
	opts := archive.VerifyOptions{}
	if *roots != "" {
		var err error
		if opts.Roots, err = signing.LoadPool(*roots); err != nil {
			fmt.Fprintln(os.Stderr, "dangan verify:", err)
			return 2
		}
	}
	if *evidence != "" {
		data, err := os.ReadFile(*evidence)
		if err == nil {
			opts.Evidence, err = archive.LoadEvidence(data)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "dangan verify:", err)
			return 2
		}
	}
	if head, err := readHead(file, 512); err == nil && bytes.Contains(head, []byte("<销毁清册")) {
		return verifyRegisterFile(file, opts)
	}
	f, err := os.Open(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dangan verify:", err)
		return 2
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dangan verify:", err)
		return 2
	}
	rep, err := archive.Verify(f, st.Size(), opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dangan verify:", err)
		return 2
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		printReport(rep)
	}
	if !rep.Valid {
		return 1
	}
	return 0
}

func printReport(rep *archive.Report) {
	verdict := "VALID: every check passed"
	if !rep.Valid {
		verdict = "INVALID: a check failed"
	}
	fmt.Printf("%s\n  档号 %s  题名 %s\n  立档单位 %s  documents %d\n  package SM3 %s\n", verdict, rep.ArchivalCode, rep.Title, rep.Creator, rep.Documents, rep.PackageSM3)
	if len(rep.Layers) > 0 {
		fmt.Println("  an amended package (修改型), layer by layer:")
		for _, l := range rep.Layers {
			which := "kept inside (原封装包)"
			if l.Current {
				which = "current form"
			}
			state := "signatures valid"
			if !l.Valid {
				state = "SIGNATURES DO NOT VERIFY"
			}
			fmt.Printf("    %s  %s, %s, made %s: %s; signed by %s; signed SM3 %s\n", l.Layer, which, l.Type, l.Created, state, strings.Join(l.Signers, ", "), l.SignedSM3)
		}
	}
	for _, f := range rep.Findings {
		mark := map[string]string{eep.Pass: "ok  ", eep.Fail: "FAIL", eep.Warn: "warn", eep.Skip: "skip"}[f.Status]
		line := fmt.Sprintf("  %s %-7s %s", mark, f.Code, f.Item)
		if f.Where != "" {
			line += " [" + f.Where + "]"
		}
		if f.Detail != "" {
			line += ": " + f.Detail
		}
		if f.Expected != "" || f.Found != "" {
			line += fmt.Sprintf(" (expected %s; found %s)", f.Expected, f.Found)
		}
		fmt.Println(line)
	}
	if len(rep.Proof) > 0 {
		fmt.Println("  evidence (event log proof):")
		for _, s := range rep.Proof {
			mark := "ok  "
			if !s.OK {
				mark = "FAIL"
			}
			fmt.Printf("    %s %s: %s\n", mark, s.Check, s.Detail)
		}
	}
}

func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	m, err := io.ReadFull(f, b)
	if err == io.ErrUnexpectedEOF {
		err = nil
	}
	return b[:m], err
}

// verifyRegisterFile checks a signed destruction register (销毁清册).
func verifyRegisterFile(path string, opts archive.VerifyOptions) int {
	doc, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dangan verify:", err)
		return 2
	}
	if opts.Roots == nil {
		fmt.Fprintln(os.Stderr, "dangan verify: a register is checked against trusted roots: give --roots")
		return 2
	}
	info, err := archive.VerifyRegister(doc, opts.Roots)
	if err != nil {
		fmt.Println("INVALID:", err)
		return 1
	}
	fmt.Printf("VALID: destruction register of %d entries, signed by %q, made %s\n", info.Entries, info.Signer, info.Made.Format(time.RFC3339))
	return 0
}
