package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/dangan-archive/dangan/archive"
)

// apiClient talks to a running server for the lifecycle commands.
type apiClient struct {
	server, token string
	http          *http.Client
}

func (c *apiClient) register(fs *flag.FlagSet) {
	fs.StringVar(&c.server, "server", "http://127.0.0.1:8480", "dangan server URL")
	fs.StringVar(&c.token, "token", os.Getenv("DANGAN_TOKEN"), "token (or DANGAN_TOKEN)")
}

// send sends a request; a problem answer is returned as an error with its detail, and
// otherwise the caller reads and closes the response body.
func (c *apiClient) send(method, path string, body any) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, strings.TrimRight(c.server, "/")+path, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.http
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Minute}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var p struct{ Type, Detail, Field string }
		json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&p)
		typ := strings.TrimPrefix(p.Type, "urn:dangan:problem:")
		if p.Field != "" {
			return nil, fmt.Errorf("%s %s: %d %s (field %s): %s", method, path, resp.StatusCode, typ, p.Field, p.Detail)
		}
		return nil, fmt.Errorf("%s %s: %d %s: %s", method, path, resp.StatusCode, typ, p.Detail)
	}
	return resp, nil
}

// do sends a request and decodes its JSON answer into out (when not nil).
func (c *apiClient) do(method, path string, body any, out any) error {
	resp, err := c.send(method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func printJSON(v any) {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// cmdSchedule prints what is due.
func cmdSchedule(args []string) error {
	fs := flag.NewFlagSet("schedule", flag.ExitOnError)
	var c apiClient
	c.register(fs)
	at := fs.String("at", "", "look from this date (YYYY-MM-DD; default the server's now)")
	days := fs.Int("horizon-days", 365, "how far ahead")
	kind := fs.String("kind", "", "one kind of item ("+strings.Join(archive.ScheduleKinds, ", ")+")")
	cursor := fs.String("cursor", "", "continue a kind's list from this cursor")
	dept := fs.String("department", "", "one department's schedule (archive roles)")
	asJSON := fs.Bool("json", false, "print the schedule as JSON")
	fs.Parse(args)
	q := url.Values{"horizon_days": {fmt.Sprint(*days)}}
	for k, v := range map[string]string{"kind": *kind, "cursor": *cursor, "department": *dept} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if *at != "" {
		q.Set("at", *at)
	}
	var s archive.Schedule
	if err := c.do(http.MethodGet, "/api/v1/schedule?"+q.Encode(), nil, &s); err != nil {
		return err
	}
	if *asJSON {
		printJSON(s)
		return nil
	}
	fmt.Printf("schedule at %s, up to %s\n", s.At.Format(time.DateOnly), s.Until.Format(time.DateOnly))
	counts := map[string]int{}
	for _, it := range s.Items {
		counts[it.Kind]++
	}
	for _, k := range archive.ScheduleKinds {
		more := ""
		if s.Next[k] != "" {
			more = fmt.Sprintf(" (more: --kind %s --cursor %s)", k, s.Next[k])
		}
		fmt.Printf("  %-17s %d%s\n", k, counts[k], more)
	}
	for _, it := range s.Items {
		mark := "due"
		if it.Overdue {
			mark = "OVERDUE"
		}
		fmt.Printf("%-17s %-8s %s  %-28s %s\n", it.Kind, mark, it.Date.Format(time.DateOnly), it.ArchivalCode, it.Package)
	}
	return nil
}

// cmdTransfer is "dangan transfer create|status|list".
func cmdTransfer(args []string) error {
	usage := "usage: dangan transfer create (--due | --packages ID,ID) [--department USCC] | status BATCH | list  [--server URL --token T]"
	if len(args) == 0 {
		return fmt.Errorf("%s", usage)
	}
	fs := flag.NewFlagSet("transfer "+args[0], flag.ExitOnError)
	var c apiClient
	c.register(fs)
	due := fs.Bool("due", false, "every permanent package whose transfer is due")
	pkgs := fs.String("packages", "", "comma-separated package ids")
	dept := fs.String("department", "", "the department (USCC), with an archive token")
	wait := fs.Bool("wait", true, "follow the batch until it is done, showing progress")
	sub := args[0]
	batch, rest := splitArg(args[1:])
	fs.Parse(rest)
	switch sub {
	case "list":
		var out struct{ Transfers []archive.Transfer }
		if err := c.do(http.MethodGet, "/api/v1/transfers", nil, &out); err != nil {
			return err
		}
		for _, t := range out.Transfers {
			fmt.Printf("%s  %-8s %-18s %d packages, %d accepted, %d rejected  %s\n", t.Batch, t.Status, t.Department, t.Total, len(t.Accepted), len(t.Rejected), t.Error)
		}
		return nil
	case "status":
		if batch == "" {
			return fmt.Errorf("%s", usage)
		}
		return followTransfer(&c, batch, *wait)
	case "create":
		req := archive.TransferRequest{Department: *dept, Due: *due}
		if *pkgs != "" {
			req.Packages = strings.Split(*pkgs, ",")
		}
		var t archive.Transfer
		if err := c.do(http.MethodPost, "/api/v1/transfers", req, &t); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "batch %s: %d packages, %d bytes, to %s\n", t.Batch, t.Total, t.Bytes, t.To)
		return followTransfer(&c, t.Batch, *wait)
	}
	return fmt.Errorf("%s", usage)
}

// followTransfer shows a batch's progress until it is done (or once, without wait).
func followTransfer(c *apiClient, batch string, wait bool) error {
	for {
		var t archive.Transfer
		if err := c.do(http.MethodGet, "/api/v1/transfers/"+url.PathEscape(batch), nil, &t); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "\rtransfer %s: %s, %d/%d sent", batch, t.Status, len(t.Sent), t.Total)
		if t.Error != "" && t.Status == archive.TransferSending {
			fmt.Fprintf(os.Stderr, " (retrying: %s)", t.Error)
		}
		if t.Status != archive.TransferSending || !wait {
			fmt.Fprintln(os.Stderr)
			printJSON(map[string]any{"batch": t.Batch, "status": t.Status, "accepted": len(t.Accepted), "rejected": t.Rejected, "error": t.Error})
			if t.Status == archive.TransferFailed {
				return fmt.Errorf("transfer %s failed: %s", batch, t.Error)
			}
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// cmdDisposal is "dangan disposal candidates|decide|approve|register".
func cmdDisposal(args []string) error {
	usage := "usage: dangan disposal candidates | decide (--package ID | --all) --action destroy|extend [--until YYYY-MM-DD] --reason R | approve (ID… | --all-pending) [--refuse] [--note N] | register [--pdf] --out FILE   [--server URL --token T]"
	if len(args) == 0 {
		return fmt.Errorf("%s", usage)
	}
	fs := flag.NewFlagSet("disposal "+args[0], flag.ExitOnError)
	var c apiClient
	c.register(fs)
	pkg := fs.String("package", "", "the package to decide on")
	all := fs.Bool("all", false, "decide on every candidate without a pending decision")
	action := fs.String("action", "", "destroy or extend")
	until := fs.String("until", "", "for extend: the new retention end (YYYY-MM-DD)")
	reason := fs.String("reason", "", "the appraisal's reason")
	allPending := fs.Bool("all-pending", false, "approve every decision waiting for approval")
	refuse := fs.Bool("refuse", false, "refuse instead of approve")
	note := fs.String("note", "", "the approver's note")
	pdf := fs.Bool("pdf", false, "the register as PDF (default: signed XML)")
	out := fs.String("out", "", "where to write the register")
	sub := args[0]
	var ids []string
	rest := args[1:]
	for len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		ids, rest = append(ids, rest[0]), rest[1:]
	}
	fs.Parse(rest)
	ids = append(ids, fs.Args()...)
	switch sub {
	case "candidates":
		var r struct{ Candidates []archive.Candidate }
		if err := c.do(http.MethodGet, "/api/v1/disposals/candidates", nil, &r); err != nil {
			return err
		}
		for _, x := range r.Candidates {
			fmt.Printf("%s  %-28s %-4s %s%s\n", x.Package, x.ArchivalCode, x.Retention, x.Rule, map[bool]string{true: "  (decision " + x.Pending + " pending)"}[x.Pending != ""])
		}
		fmt.Fprintf(os.Stderr, "%d candidates\n", len(r.Candidates))
		return nil
	case "decide":
		req := archive.DecisionRequest{Action: *action, Reason: *reason}
		if *until != "" {
			t, err := time.Parse(time.DateOnly, *until)
			if err != nil {
				return fmt.Errorf("--until: %w", err)
			}
			req.Until = t
		}
		targets := []string{*pkg}
		if *all {
			var r struct{ Candidates []archive.Candidate }
			if err := c.do(http.MethodGet, "/api/v1/disposals/candidates", nil, &r); err != nil {
				return err
			}
			targets = nil
			for _, x := range r.Candidates {
				if x.Pending == "" {
					targets = append(targets, x.Package)
				}
			}
		} else if *pkg == "" {
			return fmt.Errorf("%s", usage)
		}
		for i, id := range targets {
			req.Package = id
			var d archive.Decision
			if err := c.do(http.MethodPost, "/api/v1/disposals", req, &d); err != nil {
				return err
			}
			fmt.Printf("%s %s %s %s\n", d.ID, d.Action, d.Status, d.ArchivalCode)
			fmt.Fprintf(os.Stderr, "\rdecided %d/%d", i+1, len(targets))
		}
		fmt.Fprintln(os.Stderr)
		return nil
	case "approve":
		if *allPending {
			var r struct{ Decisions []archive.Decision }
			if err := c.do(http.MethodGet, "/api/v1/disposals", nil, &r); err != nil {
				return err
			}
			for _, d := range r.Decisions {
				if d.Status == archive.DisposalPending {
					ids = append(ids, d.ID)
				}
			}
		}
		if len(ids) == 0 {
			return fmt.Errorf("%s", usage)
		}
		for i, id := range ids {
			var d archive.Decision
			if err := c.do(http.MethodPost, "/api/v1/disposals/"+url.PathEscape(id)+"/approve", map[string]any{"approve": !*refuse, "note": *note}, &d); err != nil {
				return err
			}
			fmt.Printf("%s %s %s\n", d.ID, d.Status, d.ArchivalCode)
			fmt.Fprintf(os.Stderr, "\rapproved %d/%d", i+1, len(ids))
		}
		fmt.Fprintln(os.Stderr)
		return nil
	case "register":
		if *out == "" {
			return fmt.Errorf("%s", usage)
		}
		path := "/api/v1/disposals/register"
		if *pdf {
			path += "?format=pdf"
		}
		resp, err := c.send(http.MethodGet, path, nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, resp.Body); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	return fmt.Errorf("%s", usage)
}

// cmdAudit starts an audit run on the server and follows it.
func cmdAudit(args []string) error {
	fs := flag.NewFlagSet("audit", flag.ExitOnError)
	var c apiClient
	c.register(fs)
	all := fs.Bool("all", true, "every package (false: only those due in the audit cycle)")
	mbps := fs.Float64("mbps", 0, "throttle to this many MiB/s (0: as fast as the machine goes)")
	status := fs.Bool("status", false, "only show the current or last run")
	fs.Parse(args)
	if !*status {
		var run archive.AuditRun
		if err := c.do(http.MethodPost, "/api/v1/audits/run", map[string]any{"all": *all, "mb_per_s": *mbps}, &run); err != nil {
			return err
		}
	}
	for {
		var run archive.AuditRun
		if err := c.do(http.MethodGet, "/api/v1/audits/run", nil, &run); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "\raudit: %d/%d packages, %d MiB, %.0f MiB/s, %d failures", run.Done, run.Total, run.Bytes>>20, run.MBPerS, run.Failures)
		if !run.Running || *status {
			fmt.Fprintln(os.Stderr)
			printJSON(run)
			if run.Failures > 0 {
				var r struct{ Audits []archive.AuditResult }
				c.do(http.MethodGet, "/api/v1/audits?failed=1&since="+url.QueryEscape(run.Started.Format(time.RFC3339)), nil, &r)
				for _, a := range r.Audits {
					fmt.Printf("FAILED %s %s\n", a.Package, a.ArchivalCode)
					for _, f := range a.Failed {
						fmt.Printf("  %s\n", f)
					}
				}
				return fmt.Errorf("%d packages failed the audit", run.Failures)
			}
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
}
